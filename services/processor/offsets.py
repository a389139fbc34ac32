"""The faust edge of `sequence.Sequencer`: positions from the broker, seeks back, and what gets committed.

`InputGate.admit` gives the agent only each input partition's records in offset order; `install`
makes faust commit the gate's positions instead of its own acked offsets (faust commits a contiguous
run of acked offsets, and acks records the agent never handled in order). Both rely on faust-streaming
0.15.3 internals (`Consumer._filter_committable_offsets`, `_read_offset`, the consumer thread), named here
and nowhere else.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, cast

import faust

from services.processor.probe import ISOLATION_LEVEL, HoleProbe
from services.processor.sequence import Admission, Gap, Sequencer

log = logging.getLogger(__name__)
RESEEK_EVERY_SECONDS = 2.0


@dataclass
class InputGate:
    """Admits input records in order and seeks a partition back when faust skipped some."""

    app: faust.App
    topic: str
    probe: HoleProbe
    sequencer: Sequencer = field(default_factory=Sequencer)
    monotonic: Callable[[], float] = time.monotonic
    _reseeked: dict[int, tuple[int, float]] = field(default_factory=dict)

    @property
    def consumer(self) -> Any:
        """faust's consumer (internals are used: see the module docstring)."""
        return self.app.consumer

    async def admit(self, events: list[Any]) -> tuple[list[Any], Admission]:
        """The events to hand to the domain now, and the admission to `advance` once handed on."""
        for message in {e.message.partition: e.message for e in events}.values():
            if not self.sequencer.knows(message.partition):
                self.sequencer.start(message.partition, await self.committed(message.tp))
        pairs = [(e.message.partition, e.message.offset) for e in events]
        admission = self.sequencer.admit(pairs)
        # A gap with a seek back under way is records still in flight: no need to ask the broker again.
        unknown = [gap for gap in admission.gaps.values() if not self._seeking(gap)]
        if unknown and await self._probe(unknown, pairs):
            admission = self.sequencer.admit(pairs)
        for gap in admission.gaps.values():
            await self._gap(gap, events)
        return [events[i] for i in admission.admitted], admission

    def advance(self, admission: Admission) -> None:
        """Move the positions once the admitted events' state and outputs are handed to the producer."""
        self.sequencer.advance(admission)

    def reset(self) -> None:
        """A new assignment: positions are read from the broker again."""
        self.sequencer.reset()
        self._reseeked.clear()

    async def _probe(self, gaps: Iterable[Gap], pairs: list[tuple[int, int]]) -> bool:
        """Learn the holes up to each gapped partition's last record in the batch; True if one was a gap."""
        confirmed = False
        for gap in gaps:
            stop = 1 + max(offset for partition, offset in pairs if partition == gap.partition)
            offsets = await self.probe.records_between(self.topic, gap.partition, gap.expected, stop)
            if offsets is None:
                continue
            self.sequencer.learn(gap.partition, gap.expected, stop, offsets)
            if offsets and offsets[0] == gap.seen:
                log.info(
                    "input partition %d: offsets %d..%d hold no record (transaction markers); stepping over",
                    gap.partition,
                    gap.expected,
                    gap.seen - 1,
                )
                confirmed = True
        return confirmed

    def _seeking(self, gap: Gap) -> bool:
        last = self._reseeked.get(gap.partition)
        if last is None or last[0] != gap.expected:
            return False
        return self.monotonic() - last[1] < RESEEK_EVERY_SECONDS

    async def _gap(self, gap: Gap, events: list[Any]) -> None:
        if self._seeking(gap):
            return  # a seek back to this offset is under way; records still in flight are dropped
        self._reseeked[gap.partition] = (gap.expected, self.monotonic())
        log.warning(
            "input partition %d: expected offset %d, got %d; reading it again from %d",
            gap.partition,
            gap.expected,
            gap.seen,
            gap.expected,
        )
        tp = next(e.message.tp for e in events if e.message.partition == gap.partition)
        await self.seek(tp, gap.expected)

    async def unstick(self, tp: Any) -> None:
        """A partition stopped short of its end: step over trailing markers, else read it again."""
        position = self.sequencer.position(tp.partition)
        if position is None:
            offset = await self.committed(tp)
        else:
            end = int(self.consumer.highwater(tp) or 0)
            offsets = await self.probe.records_between(self.topic, tp.partition, position, end)
            if offsets == []:
                log.info(
                    "input partition %d: %d..%d hold no record; position moved to the end",
                    tp.partition,
                    position,
                    end - 1,
                )
                self.sequencer.step_over(tp.partition, position, end)
                return
            if offsets:
                self.sequencer.learn(tp.partition, position, end, offsets)
            offset = position
        log.warning(
            "input partition %d stalled at %s; reading it again from %d", tp.partition, position, offset
        )
        await self.seek(tp, offset)

    async def seek(self, tp: Any, offset: int) -> None:
        """Make faust read `tp` again from `offset` (records still in flight come first: dropped as gaps)."""
        await self.consumer.seek_wait({tp: offset})

    async def committed(self, tp: Any) -> int:
        """The group's committed offset on the broker, else the partition's first offset."""
        thread = self.consumer._thread
        committed = await thread.call_thread(thread._ensure_consumer().committed, tp)
        if committed is None:
            committed = (await self.consumer.earliest_offsets(tp))[tp]
        return int(committed or 0)


class _ReadOffsets(defaultdict):  # type: ignore[type-arg]
    """faust's read offsets, except that it never drops a record of the input topic as already read.

    faust drops a fetched record below its read offset, and sets the read offset from records still in
    flight after a seek: the records a seek back asked for were then dropped again. The gate orders the
    input topic itself, so it takes every record faust fetched.
    """

    def __init__(self, topic: str, current: dict[Any, int | None]) -> None:
        super().__init__(lambda: None, current)
        self.topic = topic

    def __getitem__(self, tp: Any) -> int | None:
        if tp.topic == self.topic:
            return None
        return cast(int | None, super().__getitem__(tp))


def install(app: faust.App, gate: InputGate) -> None:
    """Before the worker starts: faust commits the gate's input positions and hands it every record."""
    consumer: Any = app.consumer  # built, not connected: the worker connects it when it starts
    if getattr(consumer, "_tollgate_gated", False):
        return
    consumer._read_offset = _ReadOffsets(gate.topic, consumer._read_offset)
    _read_committed(consumer._thread)
    original = consumer._filter_committable_offsets

    def committable(tps: Any) -> dict[Any, int]:
        offsets = dict(original([tp for tp in tps if tp.topic != gate.topic]))
        for tp in consumer.assignment():
            if tp.topic != gate.topic:
                continue
            # faust's own bookkeeping for the input topic is not used: drop it so it stays small.
            for bookkeeping in (consumer._acked, consumer._acked_index, consumer._gap):
                bookkeeping.pop(tp, None)
            position = gate.sequencer.position(tp.partition)
            if position is not None and consumer._should_commit(tp, position):
                offsets[tp] = position
        return offsets

    consumer._filter_committable_offsets = committable
    consumer._tollgate_gated = True


def _read_committed(thread: Any) -> None:
    """Make the worker's Kafka consumer skip aborted transactions (faust does only with exactly_once)."""
    create = thread._create_worker_consumer

    def create_read_committed(transport: Any) -> Any:
        kafka_consumer = create(transport)
        kafka_consumer._isolation_level = ISOLATION_LEVEL  # aiokafka reads it when the consumer starts
        return kafka_consumer

    thread._create_worker_consumer = create_read_committed
