"""Un-sticks an input partition whose records stopped coming before its end.

The agent handles each input partition's records strictly in offset order (`sequence.py`). When faust
skipped records and then delivers nothing more of that partition (the skipped ones were its last), no
later record shows the gap, so nothing would seek back. `StallDetector` spots it: an assigned input
partition whose position is behind its end offset without moving for `checks` consecutive checks. The
agent then seeks the partition back to its position; the records come again and are handled in order.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class PartitionView:
    """What one check sees of an input partition."""

    partition: int
    committed: int | None  # the next offset to handle (the agent's position, else the committed one)
    end: int  # the partition's end offset (highwater)
    handled: int | None  # the agent's position, None before the partition's first record


@dataclass(slots=True)
class StallDetector:
    """Counts, per partition, the consecutive checks that saw it behind and without any progress."""

    checks: int = 3
    _last: dict[int, tuple[int | None, int | None]] = field(default_factory=dict)
    _still: dict[int, int] = field(default_factory=dict)

    def observe(self, views: list[PartitionView]) -> list[int]:
        """Record one check; return the partitions stalled for `checks` checks (their count restarts)."""
        stalled = []
        seen = set()
        for view in views:
            seen.add(view.partition)
            progress = (view.committed, view.handled)
            behind = (view.committed or 0) < view.end
            if not behind or self._last.get(view.partition) != progress:
                self._still[view.partition] = 0
            else:
                self._still[view.partition] = self._still.get(view.partition, 0) + 1
            self._last[view.partition] = progress
            if self._still[view.partition] >= self.checks:
                self._still[view.partition] = 0
                stalled.append(view.partition)
        for gone in set(self._last) - seen:  # revoked partitions start afresh when they come back
            self._last.pop(gone, None)
            self._still.pop(gone, None)
        return stalled

    def reset(self) -> None:
        """Forget everything (after a rebalance)."""
        self._last.clear()
        self._still.clear()
