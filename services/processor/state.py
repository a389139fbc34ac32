"""The real side of the domain's state port: quix-streams' RocksDB state, one prefix per licensee.

Every write is a `state.set(key, value, ttl=...)`; quix stamps it with the record's event time plus
the ttl, drops it from reads once the partition's event-time high-water reaches that stamp, and sweeps
it from RocksDB and the changelog in bounded batches, so expiry costs what expires. A checkpoint
flushes only the keys its records touched.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from services.processor.domain.store import Write

STREAM_TIME = "stream_time"
# Seconds the stored stream time may trail the true one (see PartitionState; step._MARGIN is larger).
STREAM_TIME_STEP = 1.0
# The per-partition state lives under its own prefix, apart from every licensee's keys.
PARTITION_PREFIX = b"\x00partition"


class LicenseeState:
    """A licensee's quix `State`, read by the domain and written after its decision.

    Window-scoped keys (month, minute, fired markers) are read through `cache`, which lives exactly as
    long as the checkpoint's store transaction and holds what this worker wrote in it, so a hot
    licensee's counters are read from RocksDB once per checkpoint. Those keys expire only after their
    window's end plus the lateness, and a call that could reach them after that is late (decided
    before any read), so the cache never shows a value quix would hide. Dedupe keys are always read
    from the state.
    """

    __slots__ = ("cache", "prefix", "state")

    def __init__(
        self, state: Any, cache: dict[tuple[Any, str], Any] | None = None, prefix: Any = None
    ) -> None:
        self.state = state
        self.cache = cache
        self.prefix = prefix

    def get(self, key: str) -> Any:
        """The live value of `key`, or None."""
        if self.cache is None or key.startswith("d:"):
            return self.state.get(key)
        slot = (self.prefix, key)
        if slot in self.cache:
            return self.cache[slot]
        value = self.cache[slot] = self.state.get(key)
        return value

    def apply(self, writes: list[Write], event_time: float) -> None:
        """Store each write with the ttl that makes it expire at its `expires_at`."""
        for write in writes:
            # At least 1 ms: quix fails the whole transaction on a ttl that is not positive.
            ttl = timedelta(milliseconds=max(1, int((write.expires_at - event_time) * 1000)))
            self.state.set(write.key, write.value, ttl=ttl)
            if self.cache is not None and not write.key.startswith("d:"):
                self.cache[(self.prefix, write.key)] = write.value


class PartitionState:
    """The input partition's stream time, kept in the same store transaction as the licensees' keys.

    One object serves a whole checkpoint (its store transaction). The stored value is written only when
    the stream time moved by `STREAM_TIME_STEP`, so it may trail the true one by less than that; the
    domain's expiry margin covers it, and quix's own high-water, which expires keys, is always exact.
    """

    __slots__ = ("state", "stored", "value")

    def __init__(self, state: Any) -> None:
        self.state = state
        found = state.get(STREAM_TIME)
        self.value: float | None = None if found is None else float(found)
        self.stored = self.value

    def stream_time(self) -> float | None:
        """The latest accepted event time of the partition (epoch seconds), if any."""
        return self.value

    def advance(self, event_time: float) -> None:
        """Move the stream time forward (never back)."""
        self.value = event_time
        if self.stored is None or event_time - self.stored >= STREAM_TIME_STEP:
            self.state.set(STREAM_TIME, event_time)
            self.stored = event_time
