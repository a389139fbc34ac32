"""Counter increments held until the checkpoint that made them has committed.

quix-streams starts a new checkpoint only after the previous one committed its Kafka transaction; a
checkpoint that fails to commit stops the worker. So once the current checkpoint is another object,
every increment of the earlier ones describes committed work, and an aborted transaction's records,
re-read after a restart, are counted only once.

A checkpoint's increments are summed as they come (one dict update per increment) and reach the
Prometheus counters once per label when the checkpoint is settled: a lock and a counter `inc` per
event cost more than the whole rule evaluation.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from services.processor.metrics import ProcessorMetrics


class _Pending:
    """The summed increments of one checkpoint."""

    __slots__ = ("checkpoint", "counted", "lags", "shown", "sums")

    def __init__(self, checkpoint: object) -> None:
        self.checkpoint = checkpoint
        self.sums: dict[tuple[Any, ...], int] = {}  # ("outcome", kind) | ("fired", licensee, rule, sev)
        self.counted: dict[str, list[int]] = {}  # licensee -> [calls, records]
        self.lags: list[float] = []
        # licensee -> its latest (agreement, counts, input partition), shown once committed
        self.shown: dict[str, tuple[Any, Any, int]] = {}


class Tally:
    """Increments summed per checkpoint, applied when their checkpoint is no longer open.

    `add` runs on the worker's thread only; `settle` also runs on the scrape thread. The open bucket is
    replaced, never changed, under the lock, so a scrape never applies a bucket that can still grow.
    """

    def __init__(self, metrics: ProcessorMetrics, current: Callable[[], object | None]) -> None:
        self.metrics = metrics
        self.current = current
        self._lock = threading.Lock()
        self._open: _Pending | None = None
        self._done: list[_Pending] = []

    def add(self, checkpoint: object, *increment: Any) -> None:
        """Hold one increment of `checkpoint`: ("outcome", kind) | ("counted", licensee, records,
        event lag in seconds, (agreement, counts, input partition)) | ("fired", licensee, rule, severity)."""
        bucket = self._open
        if bucket is None or bucket.checkpoint is not checkpoint:
            bucket = self._rotate(checkpoint)
        if increment[0] == "counted":
            _, licensee, records, lag, shown = increment
            counted = bucket.counted.get(licensee)
            if counted is None:
                bucket.counted[licensee] = [1, records]
            else:
                counted[0] += 1
                counted[1] += records
            bucket.lags.append(lag)
            bucket.shown[licensee] = shown
        else:
            bucket.sums[increment] = bucket.sums.get(increment, 0) + 1

    def settle(self) -> None:
        """Apply every bucket whose checkpoint has committed."""
        current = self.current()
        with self._lock:
            if self._open is not None and self._open.checkpoint is not current:
                self._done.append(self._open)
                self._open = None
            done, self._done = self._done, []
        self._apply_all(done)

    def _rotate(self, checkpoint: object) -> _Pending:
        # A new checkpoint is open, so every earlier one has committed.
        with self._lock:
            if self._open is not None:
                self._done.append(self._open)
            bucket = self._open = _Pending(checkpoint)
            done, self._done = self._done, []
        self._apply_all(done)
        return bucket

    def _apply_all(self, buckets: list[_Pending]) -> None:
        metrics = self.metrics
        for bucket in buckets:
            for (kind, *args), count in bucket.sums.items():
                if kind == "outcome":
                    metrics.outcome(args[0], count)
                elif kind == "fired":
                    metrics.fired(args[0], args[1], args[2], count)
            for licensee, (calls, records) in bucket.counted.items():
                metrics.outcome("counted", calls)
                metrics.counted(licensee, records, calls)
            for licensee, (agreement, counts, partition) in bucket.shown.items():
                metrics.show(licensee, agreement, counts, partition)
            observe = metrics.event_lag.observe
            for seconds in bucket.lags:
                observe(seconds)
