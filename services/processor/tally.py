"""Counter increments held until the checkpoint that made them has committed.

quix-streams starts a new checkpoint only after the previous one committed its Kafka transaction; a
checkpoint that fails to commit stops the worker. So once the current checkpoint is another object,
every increment of the earlier ones describes committed work, and an aborted transaction's records,
re-read after a restart, are counted only once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from services.processor.metrics import ProcessorMetrics

Increment = tuple[Any, ...]


class Tally:
    """Buckets of increments, one per checkpoint, applied when their checkpoint is no longer open."""

    def __init__(self, metrics: ProcessorMetrics, current: Callable[[], object | None]) -> None:
        self.metrics = metrics
        self.current = current
        self._lock = threading.Lock()
        self._buckets: list[tuple[object, list[Increment]]] = []

    def add(self, checkpoint: object, *increment: Any) -> None:
        """Hold one increment of `checkpoint`: ("outcome", kind) | ("counted", licensee, records) |
        ("fired", licensee, rule, severity) | ("event_lag", seconds)."""
        done: list[tuple[object, list[Increment]]] = []
        with self._lock:
            if not self._buckets or self._buckets[-1][0] is not checkpoint:
                # A new checkpoint is open, so every earlier one has committed.
                done, self._buckets = self._buckets, [(checkpoint, [])]
            self._buckets[-1][1].append(increment)
        self._apply_all(done)

    def settle(self) -> None:
        """Apply every bucket whose checkpoint has committed."""
        current = self.current()
        with self._lock:
            done = [b for b in self._buckets if b[0] is not current]
            self._buckets = [b for b in self._buckets if b[0] is current]
        self._apply_all(done)

    def _apply_all(self, buckets: list[tuple[object, list[Increment]]]) -> None:
        for _, increments in buckets:
            for increment in increments:
                self._apply(increment)

    def _apply(self, increment: Increment) -> None:
        kind, *args = increment
        metrics = self.metrics
        if kind == "outcome":
            metrics.outcome(args[0])
        elif kind == "counted":
            metrics.counted(args[0], args[1])
        elif kind == "fired":
            metrics.fired(args[0], args[1], args[2])
        elif kind == "event_lag":
            metrics.event_lag.observe(args[0])
