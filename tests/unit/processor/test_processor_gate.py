"""The input gate: committed offsets start each partition, skips seek back once, markers are stepped over."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from services.processor.offsets import InputGate
from services.processor.probe import InMemoryHoleProbe

TOPIC = "calls"


@dataclass(frozen=True)
class TP:
    """A topic partition, as faust names it."""

    topic: str
    partition: int


@dataclass
class Msg:
    """The part of a faust message the gate reads."""

    partition: int
    offset: int

    @property
    def tp(self) -> TP:
        """The message's topic partition."""
        return TP(TOPIC, self.partition)


@dataclass
class Event:
    """A faust event: only its message matters here."""

    message: Msg


@dataclass
class FakeConsumer:
    """faust's consumer as far as the gate uses it: committed offsets, ends, and the seeks asked for."""

    committed_offsets: dict[int, int | None]
    ends: dict[int, int] = field(default_factory=dict)
    seeks: list[tuple[int, int]] = field(default_factory=list)

    @property
    def _thread(self) -> FakeConsumer:
        return self

    def _ensure_consumer(self) -> FakeConsumer:
        return self

    async def call_thread(self, fn: Any, *args: Any) -> Any:
        return fn(*args)

    def committed(self, tp: TP) -> int | None:
        return self.committed_offsets.get(tp.partition)

    async def earliest_offsets(self, *tps: TP) -> dict[TP, int]:
        return {tp: 0 for tp in tps}

    async def seek_wait(self, offsets: dict[TP, int]) -> None:
        self.seeks.extend((tp.partition, offset) for tp, offset in offsets.items())

    def highwater(self, tp: TP) -> int:
        return self.ends[tp.partition]


@dataclass
class FakeApp:
    """Holds the consumer, as faust's App does."""

    consumer: FakeConsumer


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _gate(
    committed: dict[int, int | None], records: dict[int, list[int]]
) -> tuple[InputGate, FakeConsumer, Clock]:
    consumer, clock = FakeConsumer(committed), Clock()
    gate = InputGate(FakeApp(consumer), TOPIC, InMemoryHoleProbe(records), monotonic=clock)  # type: ignore[arg-type]
    return gate, consumer, clock


def _admit(gate: InputGate, *offsets: tuple[int, int]) -> list[tuple[int, int]]:
    events = [Event(Msg(p, o)) for p, o in offsets]
    admitted, admission = asyncio.run(gate.admit(events))
    gate.advance(admission)
    return [(e.message.partition, e.message.offset) for e in admitted]


def test_each_partition_starts_at_its_committed_offset_or_the_log_start() -> None:
    gate, consumer, _ = _gate({0: 5, 1: None}, {})
    assert _admit(gate, (0, 4), (0, 5), (1, 0), (1, 1)) == [(0, 5), (1, 0), (1, 1)]
    assert gate.sequencer.positions() == {0: 6, 1: 2}
    assert consumer.seeks == []


def test_skipped_records_seek_back_once_while_records_in_flight_still_arrive() -> None:
    gate, consumer, clock = _gate({0: 10}, {0: list(range(10, 20))})
    assert _admit(gate, (0, 14), (0, 15)) == []
    assert _admit(gate, (0, 16)) == []
    assert consumer.seeks == [(0, 10)]
    clock.now += 5
    assert _admit(gate, (0, 17)) == []
    assert consumer.seeks == [(0, 10), (0, 10)]
    assert _admit(gate, *((0, o) for o in range(10, 18))) == [(0, o) for o in range(10, 18)]
    assert gate.sequencer.position(0) == 18


def test_offsets_the_broker_holds_no_record_at_are_stepped_over_without_a_seek() -> None:
    gate, consumer, _ = _gate({0: 10}, {0: [10, 12, 13, 15]})
    assert _admit(gate, (0, 10), (0, 12), (0, 13), (0, 15)) == [(0, 10), (0, 12), (0, 13), (0, 15)]
    assert consumer.seeks == [] and gate.sequencer.position(0) == 16


def test_a_stopped_partition_moves_past_trailing_markers_and_seeks_back_when_records_remain() -> None:
    gate, consumer, _ = _gate({0: 10, 1: 3}, {0: [10], 1: [3, 4, 5]})
    consumer.ends = {0: 12, 1: 6}
    _admit(gate, (0, 10), (1, 3))
    asyncio.run(gate.unstick(TP(TOPIC, 0)))
    asyncio.run(gate.unstick(TP(TOPIC, 1)))
    assert gate.sequencer.position(0) == 12
    assert consumer.seeks == [(1, 4)]


def test_a_new_assignment_reads_positions_from_the_broker_again() -> None:
    gate, consumer, _ = _gate({0: 10}, {})
    _admit(gate, (0, 10), (0, 11))
    gate.reset()
    consumer.committed_offsets[0] = 30
    assert _admit(gate, (0, 12), (0, 30)) == [(0, 30)]
