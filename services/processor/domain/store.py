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


@dataclass(frozen=True, slots=True)
class Write:
    """One keyed value to store; it expires at `expires_at` (epoch seconds of event time)."""

    key: str
    value: Any
    expires_at: float


@dataclass
class InMemoryState:
    """A dict with event-time expiry, one per licensee (the in-memory side of the port)."""

    values: dict[str, tuple[Any, float]] = field(default_factory=dict)
    high_water: float | None = None

    def get(self, key: str) -> Any:
        """The live value, or None once the high-water reached its expiry."""
        found = self.values.get(key)
        if found is None or (self.high_water is not None and found[1] <= self.high_water):
            return None
        return found[0]

    def apply(self, writes: list[Write], event_time: float) -> None:
        """Store `writes` for a record of `event_time` and move the high-water like quix does."""
        self.high_water = event_time if self.high_water is None else max(self.high_water, event_time)
        for write in writes:
            self.values[write.key] = (write.value, write.expires_at)
