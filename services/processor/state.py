"""The real side of the domain's state port: quix-streams' RocksDB state, one prefix per licensee.

Every write is held in the checkpoint's `Batch` and reaches quix as one `set(key, value, ttl=...)` per
touched key when the checkpoint ends; quix stamps it with the event time plus the ttl, drops it from
reads once the partition's event-time high-water reaches that stamp, and sweeps it from RocksDB and
the changelog in bounded batches, so expiry costs what expires.
"""

from __future__ import annotations

from typing import Any

from services.processor.batch import Batch
from services.processor.domain.store import Write

STREAM_TIME = "stream_time"
OPEN_USAGE = "open_usage"
# The per-partition state lives under its own prefix, apart from every licensee's keys.
PARTITION_PREFIX = b"\x00partition"


class LicenseeState:
    """One licensee's keys (quix prefix = its message key) as one record sees them.

    Window-scoped keys (month, minute, fired markers) expire only after their window's end plus the
    lateness, and a call that could reach them after that is late (decided before any read), so a
    value cached for the checkpoint is never one quix would hide.
    """

    __slots__ = ("batch", "prefix", "timestamp_ms")

    def __init__(self, batch: Batch, prefix: bytes, timestamp_ms: int) -> None:
        self.batch, self.prefix, self.timestamp_ms = batch, prefix, timestamp_ms

    def get(self, key: str) -> Any:
        """The live value of `key`, or None."""
        return self.batch.get(self.prefix, key, self.timestamp_ms)

    def apply(self, writes: list[Write], event_time: float) -> None:
        """Hold each write, stamped to expire at its `expires_at` (None: never)."""
        at = int(event_time * 1000)
        for write in writes:
            expires = None if write.expires_at is None else int(write.expires_at * 1000)
            self.batch.put(self.prefix, write.key, write.value, expires, at)


class PartitionState:
    """The input partition's stream time and which licensees hold open usage buckets since when.

    One object serves a whole checkpoint (its `Batch`); both values are written once per checkpoint at
    most, in the same store transaction as the licensees' keys.
    """

    __slots__ = ("batch", "open", "value")

    def __init__(self, batch: Batch) -> None:
        self.batch = batch
        found = batch.get(PARTITION_PREFIX, STREAM_TIME, None)
        self.value: float | None = None if found is None else float(found)
        # licensee key (text) -> processing time (epoch s) its oldest open bucket opened
        self.open: dict[str, float] = dict(batch.get(PARTITION_PREFIX, OPEN_USAGE, None) or {})

    def stream_time(self) -> float | None:
        """The latest accepted event time of the partition (epoch seconds), if any."""
        return self.value

    def advance(self, event_time: float) -> None:
        """Move the stream time forward (never back)."""
        self.value = event_time
        self.batch.put(PARTITION_PREFIX, STREAM_TIME, event_time, None, None)

    def opened(self, licensee: str, now: float) -> None:
        """Note that `licensee` holds open usage buckets since `now` (if it held none)."""
        if licensee not in self.open:
            self.open[licensee] = now
            self._store_open()

    def closed(self, licensee: str) -> None:
        """Note that `licensee`'s open buckets were flushed."""
        if self.open.pop(licensee, None) is not None:
            self._store_open()

    def due(self, now: float, every: float) -> list[str]:
        """Licensees whose oldest open bucket is at least `every` seconds old."""
        return [licensee for licensee, since in self.open.items() if now - since >= every]

    def _store_open(self) -> None:
        # The live dict, not a copy: the batch writes it once, at the checkpoint's end, with its last
        # content; copying it on every change made closing n licensees cost n copies.
        self.batch.put(PARTITION_PREFIX, OPEN_USAGE, self.open, None, None)
