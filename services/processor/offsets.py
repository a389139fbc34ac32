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
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

import faust
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from services.processor.sequence import Admission, Gap, Sequencer

log = logging.getLogger(__name__)
RESEEK_EVERY_SECONDS = 2.0


class HoleProbe(Protocol):
    """Tells where the broker's next record at or after an offset is."""

    async def first_offset(self, topic: str, partition: int, offset: int) -> int | None:
        """The first record's offset at or after `offset`; the end offset if there is none before it;
        None if the broker did not tell in time."""
        ...


@dataclass(slots=True)
class KafkaHoleProbe:
    """A group-less aiokafka consumer that reads from a given offset until a record or the end."""

    bootstrap: str
    options: dict[str, Any] = field(default_factory=dict)
    timeout_ms: int = 3000

    async def first_offset(self, topic: str, partition: int, offset: int) -> int | None:
        """See `HoleProbe`; a broker error reads as None."""
        tp = TopicPartition(topic, partition)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False, **self.options
        )
        try:
            await consumer.start()
            consumer.assign([tp])
            consumer.seek(tp, offset)
            end = (await consumer.end_offsets([tp]))[tp]
            deadline = time.monotonic() + self.timeout_ms / 1000
            while offset < end and time.monotonic() < deadline:
                records = (await consumer.getmany(tp, timeout_ms=200, max_records=1)).get(tp, [])
                if records:
                    return int(records[0].offset)
                # A fetch of transaction markers only returns nothing but moves the position past them.
                offset = int(await consumer.position(tp))
            return int(end) if offset >= end else None
        except KafkaError as exc:
            log.warning("probing %s[%d]@%d failed: %s", topic, partition, offset, exc)
            return None
        finally:
            await consumer.stop()


@dataclass(slots=True)
class InMemoryHoleProbe:
    """The probe's in-memory side: answers from a list of offsets per partition."""

    offsets: dict[int, list[int]] = field(default_factory=dict)

    ends: dict[int, int] = field(default_factory=dict)

    async def first_offset(self, topic: str, partition: int, offset: int) -> int | None:
        """The first listed offset at or after `offset`, else the partition's end if one is given."""
        following = (o for o in sorted(self.offsets.get(partition, [])) if o >= offset)
        return next(following, self.ends.get(partition))


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
        # Each confirmed hole may uncover the next one (a marker after every transaction).
        for _ in range(len(pairs)):
            if not admission.gaps or not await self._probe(admission.gaps.values()):
                break
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

    async def _probe(self, gaps: Any) -> bool:
        confirmed = False
        for gap in gaps:
            first = await self.probe.first_offset(self.topic, gap.partition, gap.expected)
            if first == gap.seen:
                log.info(
                    "input partition %d: offsets %d..%d hold no record (transaction markers); stepping over",
                    gap.partition,
                    gap.expected,
                    gap.seen - 1,
                )
                self.sequencer.confirm_hole(gap.partition, gap.expected, gap.seen)
                confirmed = True
        return confirmed

    async def _gap(self, gap: Gap, events: list[Any]) -> None:
        last = self._reseeked.get(gap.partition)
        now = self.monotonic()
        if last is not None and last[0] == gap.expected and now - last[1] < RESEEK_EVERY_SECONDS:
            return  # a seek back to this offset is under way; records still in flight are dropped
        self._reseeked[gap.partition] = (gap.expected, now)
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
        """A partition stopped short of its end: step over a trailing hole, else read it again."""
        position = self.sequencer.position(tp.partition)
        if position is None:
            offset = await self.committed(tp)
        else:
            first = await self.probe.first_offset(self.topic, tp.partition, position)
            if first is not None and first > position and first >= self.consumer.highwater(tp):
                log.info(
                    "input partition %d: %d..%d hold no record; position moved to the end",
                    tp.partition,
                    position,
                    first - 1,
                )
                self.sequencer.step_over(tp.partition, position, first)
                return
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
