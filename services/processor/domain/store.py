"""The state port the domain reads: keyed values of one licensee that expire by event time.

The real side is quix-streams' RocksDB state (`services/processor/state.py`); the in-memory side below
has the same expiry rule, for unit tests: a value written with expiry `e` is gone once the partition's
event-time high-water reaches `e` (quix: "drop iff stamp <= high_water").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


class StateReader(Protocol):
    """What the domain may read."""

    def get(self, key: str) -> Any:
        """The live value of `key`, or None."""


@dataclass(slots=True)  # not frozen: one is built per call, and frozen ones cost more to build
class Write:
    """One keyed value to store; it expires at `expires_at` (epoch seconds of event time), None: never."""

    key: str
    value: Any
    expires_at: float | None


@dataclass
class InMemoryPartition:
    """One input partition's state: every licensee's keys and one event-time high-water, like quix."""

    values: dict[tuple[str, str], tuple[Any, float | None]] = field(default_factory=dict)
    high_water: float | None = None
    stream_time_value: float | None = None
    # licensee -> processing time its oldest open usage bucket opened (as state.PartitionState)
    open: dict[str, float] = field(default_factory=dict)

    def licensee(self, licensee_id: str) -> InMemoryLicensee:
        """The view of one licensee's keys (quix: the state prefixed by the message key)."""
        return InMemoryLicensee(self, licensee_id)

    def stream_time(self) -> float | None:
        """The partition's stream time, as the domain last set it."""
        return self.stream_time_value

    def advance(self, event_time: float) -> None:
        """Move the stream time forward."""
        self.stream_time_value = event_time

    def opened(self, licensee: str, now: float) -> None:
        """Note that `licensee` holds open usage buckets since `now` (if it held none)."""
        self.open.setdefault(licensee, now)


@dataclass(frozen=True, slots=True)
class InMemoryLicensee:
    """A licensee's keys in an `InMemoryPartition` (the in-memory side of the port)."""

    partition: InMemoryPartition
    licensee_id: str

    def get(self, key: str) -> Any:
        """The live value, or None once the partition's high-water reached its expiry."""
        found = self.partition.values.get((self.licensee_id, key))
        high_water = self.partition.high_water
        if found is None or (high_water is not None and found[1] is not None and found[1] <= high_water):
            return None
        return found[0]

    def apply(self, writes: list[Write], event_time: float) -> None:
        """Store `writes` for a record of `event_time`; quix moves the high-water on each access."""
        part = self.partition
        part.high_water = event_time if part.high_water is None else max(part.high_water, event_time)
        for write in writes:
            part.values[(self.licensee_id, write.key)] = (write.value, write.expires_at)
