"""Ticks: wake an input partition whose usage buckets are due but which receives no calls.

quix-streams runs a worker's code only for records, so a partition that falls quiet would hold its
last open buckets, and its licensee's last calls would go unbilled. The ticker produces a small tick
record into such a partition; the worker reads it like any record (it counts nothing), and the
checkpoint that holds it flushes the due buckets (flush.py). It ticks the partitions this worker
knows to be due, and every `sweep` seconds all of them, for buckets a partition's previous owner left.
Delivery: ticks are plain (non-transactional) records; a lost or repeated tick changes nothing but
when a flush happens.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)
TICK = b"\x00tollgate.tick"


class Ticker:
    """A background thread that sends `send(partition)` to due partitions, and to all every `sweep` s."""

    def __init__(
        self,
        send: Callable[[int], None],
        partitions: Callable[[], int],
        clock: Callable[[], float],
        interval: float,
        sweep: float,
    ) -> None:
        self.send, self.partitions, self.clock = send, partitions, clock
        self.interval, self.sweep = interval, sweep
        self._due: dict[int, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def due(self, partition: int, at: float | None) -> None:
        """Note when `partition`'s oldest open bucket falls due (None: it holds none)."""
        with self._lock:
            if at is None:
                self._due.pop(partition, None)
            else:
                self._due[partition] = at

    def open_partitions(self) -> int:
        """How many partitions hold open buckets, as far as this worker knows."""
        with self._lock:
            return len(self._due)

    def assigned(self, partitions: list[int]) -> None:
        """Tick newly assigned partitions at once: their first checkpoint here learns what they hold."""
        for partition in sorted(partitions):
            self.send(partition)

    def revoked(self, partitions: list[int]) -> None:
        """Forget partitions this worker no longer owns (their new owner ticks them)."""
        with self._lock:
            for partition in partitions:
                self._due.pop(partition, None)

    def start(self) -> None:
        """Start ticking."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="usage-ticker", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop ticking."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def _run(self) -> None:
        swept = self.clock()
        while not self._stop.wait(self.interval):
            try:
                swept = self._tick(swept)
            except Exception as exc:  # a missed tick only delays a flush; the next one tries again
                log.warning("usage ticker: %s", exc)

    def _tick(self, swept: float) -> float:
        now = self.clock()
        if now - swept >= self.sweep:
            targets = set(range(self.partitions()))
            swept = now
        else:
            with self._lock:
                targets = {p for p, at in self._due.items() if at <= now}
        with self._lock:
            for partition in targets & self._due.keys():
                # Not again before the flush this tick causes has had time to report.
                self._due[partition] = now + self.interval
        for partition in sorted(targets):
            self.send(partition)
        return swept


class TickSender:
    """Produces ticks with its own plain producer, created on first use (none at build time)."""

    def __init__(self, config: dict[str, Any], topic: str) -> None:
        self.config, self.topic = config, topic
        self._producer: Any = None

    def _client(self) -> Any:
        if self._producer is None:
            from confluent_kafka import Producer  # type: ignore[import-untyped]

            self._producer = Producer({**self.config, "linger.ms": 0, "enable.idempotence": False})
        return self._producer

    def send(self, partition: int) -> None:
        """One tick into `partition` of the input topic."""
        producer = self._client()
        producer.produce(self.topic, TICK, key=TICK, partition=partition)
        producer.poll(0)

    def partitions(self) -> int:
        """How many partitions the input topic has."""
        return len(self._client().list_topics(self.topic, timeout=10).topics[self.topic].partitions)

    def close(self) -> None:
        """Deliver what is queued (briefly) and drop the producer."""
        if self._producer is not None:
            self._producer.flush(2)
            self._producer = None
