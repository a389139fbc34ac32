"""The sequencer: each input partition's records reach the domain in offset order from the committed one."""

from __future__ import annotations

import asyncio

import pytest

from services.processor.probe import InMemoryHoleProbe
from services.processor.sequence import Gap, Sequencer


def _sequencer(**starts: int) -> Sequencer:
    sequencer = Sequencer()
    for name, offset in starts.items():
        sequencer.start(int(name[1:]), offset)
    return sequencer


@pytest.mark.parametrize(
    ("records", "admitted", "positions", "gaps", "stale"),
    [
        pytest.param([(0, 10), (0, 11), (0, 12)], [0, 1, 2], {0: 13}, {}, 0, id="in order from the start"),
        pytest.param([(0, 8), (0, 9), (0, 10)], [2], {0: 11}, {}, 2, id="below the position is stale"),
        pytest.param([(0, 12), (0, 13)], [], {}, {0: Gap(0, 10, 12)}, 0, id="a gap holds the partition"),
        pytest.param(
            [(0, 10), (0, 12), (0, 11), (0, 13)],
            [0],
            {0: 11},
            {0: Gap(0, 11, 12)},
            0,
            id="nothing of a partition after its gap in the batch, even the missing record",
        ),
        pytest.param(
            [(1, 5), (0, 11), (1, 6), (0, 10)],
            [0, 2],
            {1: 7},
            {0: Gap(0, 10, 11)},
            0,
            id="a gap in one partition does not hold another",
        ),
        pytest.param([], [], {}, {}, 0, id="an empty batch"),
    ],
)
def test_a_batch_is_admitted_only_in_offset_order_per_partition(
    records: list[tuple[int, int]],
    admitted: list[int],
    positions: dict[int, int],
    gaps: dict[int, Gap],
    stale: int,
) -> None:
    admission = _sequencer(p0=10, p1=5).admit(records)
    assert admission.admitted == admitted
    assert admission.positions == positions
    assert admission.gaps == gaps
    assert admission.stale == stale


def test_positions_move_only_when_the_admitted_batch_is_advanced() -> None:
    sequencer = _sequencer(p0=10)
    admission = sequencer.admit([(0, 10), (0, 11)])
    assert sequencer.position(0) == 10
    assert sequencer.advance(admission)
    assert sequencer.position(0) == 12
    assert sequencer.admit([(0, 11), (0, 12)]).admitted == [1]


def test_a_batch_admitted_before_a_reset_cannot_move_any_position() -> None:
    sequencer = _sequencer(p0=10)
    admission = sequencer.admit([(0, 10)])
    sequencer.reset()
    sequencer.start(0, 4)
    assert not sequencer.advance(admission)
    assert sequencer.position(0) == 4
    assert not Sequencer().knows(0)


def test_holes_the_broker_showed_are_stepped_over_and_forgotten_once_passed() -> None:
    sequencer = _sequencer(p0=10)
    assert sequencer.admit([(0, 12)]).gaps == {0: Gap(0, 10, 12)}
    sequencer.learn(0, 10, 14, [12, 13])
    admission = sequencer.admit([(0, 12), (0, 13)])
    assert admission.admitted == [0, 1] and not admission.gaps
    sequencer.advance(admission)
    assert sequencer.position(0) == 14
    assert sequencer.admit([(0, 16)]).gaps == {0: Gap(0, 14, 16)}


def test_records_the_broker_has_in_a_gap_keep_it_a_gap() -> None:
    sequencer = _sequencer(p0=10)
    sequencer.learn(0, 10, 14, [10, 11, 13])
    assert sequencer.admit([(0, 13)]).gaps == {0: Gap(0, 10, 13)}
    assert sequencer.admit([(0, 10), (0, 11), (0, 13)]).admitted == [0, 1, 2]


@pytest.mark.parametrize(
    ("start", "stop", "found"),
    [(4, 10, [5, 9]), (5, 6, [5]), (10, 20, []), (0, 3, []), (3, 4, [3])],
)
def test_the_in_memory_probe_lists_the_records_in_a_range(start: int, stop: int, found: list[int]) -> None:
    probe = InMemoryHoleProbe({0: [9, 3, 5]})
    assert asyncio.run(probe.records_between("t", 0, start, stop)) == found


def test_a_trailing_hole_is_stepped_over_only_from_the_offset_it_was_seen_at() -> None:
    sequencer = _sequencer(p0=10)
    sequencer.step_over(0, 9, 12)
    assert sequencer.position(0) == 10
    sequencer.step_over(0, 10, 12)
    assert sequencer.position(0) == 12


def test_several_confirmed_holes_in_one_partition_are_all_stepped_over() -> None:
    sequencer = _sequencer(p0=0)
    records = [(0, 0), (0, 1), (0, 3), (0, 4), (0, 6)]
    sequencer.learn(0, 0, 7, [0, 1, 3, 4, 6])
    admission = sequencer.admit(records)
    assert admission.admitted == [0, 1, 2, 3, 4] and admission.positions == {0: 7}
