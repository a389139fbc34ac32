"""Duplicates, replays and late events: counts change once, outputs are re-emitted with the same ids."""

from __future__ import annotations

from datetime import timedelta

import pytest
from processor_helpers import OCT, Feed, agreements, call, with_limits

from services.core import ids
from services.processor.domain.state import LicenseeState
from services.processor.domain.step import COUNTED, DUPLICATE, LATE, REPLAYED, Policy


def test_an_event_delivered_twice_at_two_offsets_counts_once_and_keeps_its_usage_id() -> None:
    feed = Feed(agreement=agreements()["pebble"])
    first, again = feed.send(call(1, OCT)), feed.send(call(1, OCT))
    assert (first.kind, again.kind) == (COUNTED, DUPLICATE)
    assert feed.state.months["2026-10"].calls == 1
    assert again.usage is not None and first.usage is not None
    assert again.usage.usage_id == first.usage.usage_id == ids.usage_id("gw", "pebble-1")
    assert again.alerts == []


def test_the_same_id_from_another_source_is_another_event() -> None:
    feed = Feed(agreement=agreements()["pebble"])
    feed.many([call(1, OCT, source="gw-a"), call(1, OCT, source="gw-b")])
    assert feed.state.months["2026-10"].calls == 2


def test_a_replayed_offset_changes_no_count_but_re_emits_its_usage_and_the_alerts_it_fired() -> None:
    agreement = with_limits(agreements()["pebble"], calls_per_month=3)
    feed = Feed(agreement=agreement)
    outcomes = feed.many([call(i, OCT + timedelta(minutes=i)) for i in range(4)])
    before = LicenseeState.from_dict(feed.state.to_dict())
    replayed = [feed.send(call(i, OCT + timedelta(minutes=i)), offset=i) for i in range(4)]
    assert [o.kind for o in replayed] == [REPLAYED] * 4
    assert feed.state == before
    assert [o.usage.usage_id for o in replayed if o.usage] == [o.usage.usage_id for o in outcomes if o.usage]
    assert [a["id"] for o in replayed for a in o.alerts] == [a["id"] for o in outcomes for a in o.alerts]
    assert [o.new_alerts for o in replayed] == [0, 0, 0, 0]


def test_a_replayed_duplicate_re_emits_only_its_usage() -> None:
    feed = Feed(agreement=with_limits(agreements()["pebble"], calls_per_month=1))
    feed.send(call(1, OCT))
    feed.send(call(1, OCT))
    replay = feed.send(call(1, OCT), offset=1)
    assert replay.kind == REPLAYED and replay.usage is not None and replay.alerts == []


def test_offsets_are_tracked_per_input_partition() -> None:
    feed = Feed(agreement=agreements()["pebble"])
    feed.send(call(1, OCT), offset=10)
    feed.partition = 1
    assert feed.send(call(2, OCT), offset=3).kind == COUNTED
    assert feed.state.last_offset == {0: 10, 1: 3}


@pytest.mark.parametrize(
    ("behind", "kind"),
    [
        (timedelta(days=6, hours=23), COUNTED),
        (timedelta(days=7), COUNTED),
        (timedelta(days=7, seconds=1), LATE),
    ],
)
def test_a_late_event_counts_in_its_own_month_up_to_the_lateness(behind: timedelta, kind: str) -> None:
    feed = Feed(agreement=agreements()["pebble"])
    nov = OCT.replace(month=11, day=5)
    feed.send(call(1, nov))
    outcome = feed.send(call(2, nov - behind))
    assert outcome.kind == kind
    if kind == COUNTED:
        assert feed.state.months["2026-10"].calls == 1
    else:
        assert outcome.usage is None and outcome.reason.startswith("late")
        assert "2026-10" not in feed.state.months


def test_lateness_follows_the_stream_event_time_not_the_wall_clock() -> None:
    # The demo replays October in late November: the clock is weeks ahead, nothing is late.
    feed = Feed(agreement=agreements()["pebble"])
    assert {feed.send(call(i, OCT + timedelta(hours=i))).kind for i in range(5)} == {COUNTED}


def test_a_late_event_that_crosses_a_threshold_alerts_in_its_own_month() -> None:
    feed = Feed(agreement=with_limits(agreements()["pebble"], calls_per_month=2))
    feed.send(call(1, OCT.replace(day=30)))
    feed.send(call(2, OCT.replace(month=11, day=2)))
    late = feed.send(call(3, OCT.replace(day=29)))
    assert [(a["data"]["rule"], a["data"]["window_start"]) for a in late.alerts] == [
        ("volume.warning", "2026-10-01T00:00:00Z"),
        ("volume.breach", "2026-10-01T00:00:00Z"),
    ]


def test_a_replayed_late_event_goes_to_the_dead_letters_again() -> None:
    feed = Feed(agreement=agreements()["pebble"])
    feed.send(call(1, OCT.replace(day=20)))
    feed.send(call(2, OCT.replace(day=2)))
    replay = feed.send(call(2, OCT.replace(day=2)), offset=1)
    assert replay.kind == REPLAYED and replay.usage is None and replay.reason.startswith("late")


def test_state_forgets_windows_and_keys_no_late_event_can_reach() -> None:
    policy = Policy(timedelta(days=7), timedelta(days=7), replay_window=0)
    feed = Feed(agreement=agreements()["pebble"], policy=policy)
    feed.many([call(i, OCT + timedelta(days=i, minutes=i)) for i in range(40)])
    state = feed.state
    assert state.high_watermark is not None
    oldest = state.high_watermark - 7 * 86400
    assert sorted(state.months) == ["2026-11"]
    assert min(state.minutes) * 60 >= oldest - 60
    assert all(entry[2] >= oldest for entry in state.seen.values())
    assert len(state.seen) == 7  # days 33..39: day 32 fell 7 minutes outside the horizon
    assert all(f.window_end > oldest for f in state.fired.values())


@pytest.mark.parametrize(
    ("replay_window", "re_emitted"),
    [(100_000, True), (5, False)],
    ids=["within the replay window: re-emitted", "further back: treated as late"],
)
def test_a_replay_past_the_dedupe_horizon_re_emits_its_usage_only_within_the_replay_window(
    replay_window: int, re_emitted: bool
) -> None:
    policy = Policy(timedelta(days=7), timedelta(days=7), replay_window=replay_window)
    feed = Feed(agreement=agreements()["pebble"], policy=policy)
    first = feed.send(call(0, OCT))
    feed.many([call(i, OCT + timedelta(days=i)) for i in range(1, 12)])
    replay = feed.send(call(0, OCT), offset=0)
    assert replay.kind == REPLAYED
    assert (replay.usage is not None) == re_emitted
    if re_emitted:
        assert replay.usage is not None and first.usage is not None
        assert replay.usage.usage_id == first.usage.usage_id
    else:
        assert replay.reason.startswith("late")


def test_the_dedupe_memory_keeps_at_most_the_cap_and_drops_the_oldest_first() -> None:
    feed = Feed(agreement=agreements()["pebble"], policy=Policy(dedupe_cap=100))
    feed.many([call(i, OCT + timedelta(seconds=i)) for i in range(250)])
    assert len(feed.state.seen) <= 100
    assert feed.state.evicted >= 150
    # A duplicate of an evicted event is counted again: the documented cost of the cap.
    assert feed.send(call(0, OCT + timedelta(seconds=300))).kind == COUNTED
    assert feed.send(call(249, OCT + timedelta(seconds=249))).kind == DUPLICATE


def test_state_survives_a_json_round_trip() -> None:
    feed = Feed("omnisoft", agreements()["omnisoft"])
    feed.many([call(i, OCT + timedelta(minutes=i), "omnisoft", "omni-shadow") for i in range(5)])
    data = feed.state.to_dict()
    import json

    assert LicenseeState.from_dict(json.loads(json.dumps(data))) == feed.state
