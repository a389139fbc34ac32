"""Admits each input partition's records strictly in offset order (pure: no Kafka, no faust).

Why: the domain reads a call at or below its licensee's last handled offset in the partition as a
replay. faust-streaming 0.15.3 sometimes skips records around a rebalance, or delivers a partition's
records out of order (README, known issues); a record handled after a later one would then read as a
replay and never count. So the agent hands the domain only the record at each partition's next expected
offset, starting at the group's committed offset:

- an offset below it is stale (handled already in this assignment): dropped;
- an offset above it is a gap: the partition's records are dropped until the missing ones come
  (the agent seeks back), unless the broker confirmed that the offsets in between hold no record
  (transaction markers do that): a confirmed hole is stepped over.

Delivery guarantee: the position only moves once a batch's state and outputs are handed to the producer
(`advance`), and the offset committed for a partition is that position, never faust's own acks; so a
committed offset implies every record below it was handled in order, whatever faust delivered.
"""

from __future__ import annotations

from dataclasses import dataclass, field

HANDLE = "handle"
STALE = "stale"
GAP = "gap"


@dataclass(frozen=True, slots=True)
class Gap:
    """Partition `partition` expected offset `expected` but was given `seen` first."""

    partition: int
    expected: int
    seen: int


@dataclass(slots=True)
class Admission:
    """What one batch may hand to the domain: its admitted indexes, and what moves or is missing."""

    epoch: int
    admitted: list[int] = field(default_factory=list)
    positions: dict[int, int] = field(default_factory=dict)
    gaps: dict[int, Gap] = field(default_factory=dict)
    stale: int = 0


@dataclass(slots=True)
class Sequencer:
    """Each assigned input partition's next offset to handle, and the holes the broker confirmed."""

    _next: dict[int, int] = field(default_factory=dict)
    _holes: dict[int, dict[int, int]] = field(default_factory=dict)  # partition -> {expected: first}
    epoch: int = 0

    def reset(self) -> None:
        """Forget every position (a new assignment); a batch admitted before cannot advance any more."""
        self._next.clear()
        self._holes.clear()
        self.epoch += 1

    def knows(self, partition: int) -> bool:
        """Whether the partition's position is known since the last reset."""
        return partition in self._next

    def start(self, partition: int, offset: int) -> None:
        """Set a partition's position (the group's committed offset, or the log start)."""
        self._next[partition] = offset

    def position(self, partition: int) -> int | None:
        """The next offset to handle: every record below it was handled, in order."""
        return self._next.get(partition)

    def positions(self) -> dict[int, int]:
        """Every known partition's position."""
        return dict(self._next)

    def learn(self, partition: int, start: int, stop: int, offsets: list[int]) -> None:
        """The broker holds records at `offsets` and at no other offset of [start, stop): note the holes."""
        holes = self._holes.setdefault(partition, {})
        expected = start
        for offset in sorted(offsets):
            if offset > expected:
                holes[expected] = offset
            expected = offset + 1

    def step_over(self, partition: int, expected: int, end: int) -> None:
        """The broker holds no record from `expected` to `end`: move there if still at `expected`."""
        if self._next.get(partition) == expected:
            self._next[partition] = end

    def admit(self, records: list[tuple[int, int]]) -> Admission:
        """Sort a batch's (partition, offset) pairs; every partition in it must be known."""
        admission = Admission(self.epoch)
        cursor = admission.positions
        for index, (partition, offset) in enumerate(records):
            if partition in admission.gaps:
                continue
            expected = cursor.get(partition, self._next[partition])
            verdict = self._verdict(partition, expected, offset)
            if verdict == HANDLE:
                admission.admitted.append(index)
                cursor[partition] = offset + 1
            elif verdict == STALE:
                admission.stale += 1
            else:
                admission.gaps[partition] = Gap(partition, expected, offset)
        return admission

    def _verdict(self, partition: int, expected: int, offset: int) -> str:
        if offset < expected:
            return STALE
        if offset == expected or self._holes.get(partition, {}).get(expected) == offset:
            return HANDLE
        return GAP

    def advance(self, admission: Admission) -> bool:
        """Move the positions past an admitted batch that was handed on; False after a reset."""
        if admission.epoch != self.epoch:
            return False
        for partition, offset in admission.positions.items():
            if offset > self._next.get(partition, -1):
                self._next[partition] = offset
            holes = self._holes.get(partition)
            if holes:  # holes behind the position are passed for good
                self._holes[partition] = {e: f for e, f in holes.items() if e >= offset}
        return True
