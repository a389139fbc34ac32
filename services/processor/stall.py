"""Un-sticks an input partition whose offsets faust stopped committing.

faust-streaming 0.15.3 commits offset X of a partition only when every offset from its (in-memory)
committed offset up to X was acked by a stream (`Consumer._new_offset`). After a worker took over
partitions, some records sometimes never reach the agent (committed offset 1311, first batch at 2171;
root cause open, see README), or the acked offsets start above the committed one (810 vs 872). Either
way `_new_offset` returns None for ever: nothing of that partition is committed again, the commit
guard has nothing pending, and the worker goes silent.

`StallDetector` spots it: an assigned input partition whose in-memory committed offset is behind its
end offset while neither the committed offset nor the last offset the agent handled moved for
`checks` consecutive checks. The agent then seeks that partition back to the group's committed offset
on the broker: the records are read again and go through the agent like after a restart (already
counted ones are replays: outputs re-emitted with the same ids, nothing counted twice). faust acks them
only after the agent handled them, and the commit guard still waits for their state and outputs, so a
committed offset still implies its state and outputs are acknowledged.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class PartitionView:
    """What one check sees of an input partition."""

    partition: int
    committed: int | None  # faust's in-memory committed offset (the next offset to read)
    end: int  # the partition's end offset (highwater)
    handled: int | None  # the last offset the agent handled


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
