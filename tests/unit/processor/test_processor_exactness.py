"""Duplicates, late and out-of-bounds events, and expiry: each call counts once, at any volume."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from processor_helpers import NOW, OCT, Feed, agreements, call, with_limits

from services.processor.domain import anomaly, usage
from services.processor.domain.step import COUNTED, DUPLICATE, LATE, OUT_OF_BOUNDS, Policy


def test_an_event_delivered_twice_counts_once_and_emits_its_usage_once() -> None:
    feed = Feed(agreement=agreements()["pebble"])
    first, again = feed.send(call(1, OCT)), feed.send(call(1, OCT))
    assert (first.kind, again.kind) == (COUNTED, DUPLICATE)
    assert feed.month("2026-10") == (1, 10)
    assert first.billed and not again.billed and again.alerts == []
    assert [held[:2] for held in feed.open_usage().values()] == [[1, 10]]


def test_the_same_id_from_another_source_is_another_event() -> None:
    feed = Feed(agreement=agreements()["pebble"])
    feed.many([call(1, OCT, source="gw-a"), call(1, OCT, source="gw-b")])
    assert feed.month("2026-10") == (2, 20)


def test_a_re_send_far_behind_the_latest_calls_but_inside_the_horizon_counts_nothing_again() -> None:
    # The at-volume case: no per-licensee cap, every key lives until the horizon passes it.
    agreement = with_limits(agreements()["pebble"], calls_per_month=60_000, calls_per_minute=10**6)
    feed = Feed(agreement=agreement)
    calls = [call(i, OCT + timedelta(seconds=i)) for i in range(25_000)]
    feed.many(calls)
    resent = feed.many(calls[:12_000])
    assert {o.kind for o in resent} == {DUPLICATE}
    assert feed.month("2026-10") == (25_000, 250_000)
    assert not any(o.alerts for o in resent)


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
    assert feed.month("2026-10") == ((1, 10) if kind == COUNTED else (0, 0))
    if kind == LATE:
        assert not outcome.billed and outcome.reason.startswith("late")


def test_lateness_follows_the_stream_event_time_not_the_wall_clock() -> None:
    # October replayed late in November: the clock is weeks ahead, nothing is late.
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


def test_a_duplicate_past_the_horizon_is_late_not_counted_again() -> None:
    feed = Feed(agreement=agreements()["pebble"])
    feed.send(call(0, OCT))
    feed.many([call(i, OCT + timedelta(days=i)) for i in range(1, 12)])
    again = feed.send(call(0, OCT))
    assert again.kind == LATE and not again.billed
    assert feed.month("2026-10")[0] == 12


def test_keys_windows_and_alert_markers_expire_once_no_late_event_can_reach_them() -> None:
    feed = Feed(agreement=with_limits(agreements()["pebble"], calls_per_month=1))
    feed.send(call(0, OCT))
    state = feed.simulation.partitions[0].licensee("pebble")
    # (usage buckets leave as deltas; day keys live a baseline longer: test_processor_anomaly.py)
    kept = (usage.OPEN_KEY, usage.BUCKET_PREFIX, anomaly.DAY_PREFIX)
    october = [key for (_, key) in feed.simulation.partitions[0].values if not key.startswith(kept)]
    # key, month (with its apps), minute, and the volume.warning and volume.breach markers
    assert len(october) == 5 and all(state.get(key) is not None for key in october)
    # a week and 2 s (the margin) past October's end
    feed.send(call(1, OCT.replace(month=11, day=8, second=2)))
    assert [key for key in october if state.get(key) is not None] == []
    # Open usage buckets never expire: they leave only as billable deltas, here both calls' hours.
    assert sorted(held[:2] for held in feed.open_usage().values()) == [[1, 10], [1, 10]]
    assert feed.month("2026-11") == (1, 10)


POLICY = Policy(max_age=timedelta(days=400), max_lead=timedelta(minutes=5))


@pytest.mark.parametrize(
    ("at", "kind"),
    [
        (datetime(1, 1, 1, tzinfo=UTC), OUT_OF_BOUNDS),
        (datetime(1970, 1, 1, tzinfo=UTC), OUT_OF_BOUNDS),
        (NOW - timedelta(days=400, seconds=1), OUT_OF_BOUNDS),
        (NOW - timedelta(days=400), COUNTED),
        (NOW, COUNTED),
        (NOW + timedelta(minutes=5), COUNTED),
        (NOW + timedelta(minutes=5, seconds=1), OUT_OF_BOUNDS),
        (datetime(2100, 1, 1, tzinfo=UTC), OUT_OF_BOUNDS),
        (datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC), OUT_OF_BOUNDS),
    ],
)
def test_event_times_are_bounded_by_the_processors_clock_in_both_directions(at: datetime, kind: str) -> None:
    outcome = Feed(agreement=agreements()["pebble"], policy=POLICY).send(call(1, at))
    assert outcome.kind == kind
    if kind == OUT_OF_BOUNDS:
        assert outcome.reason.startswith("out_of_bounds") and outcome.decision.writes == []


def test_an_event_far_in_the_future_does_not_make_the_licensees_later_calls_late() -> None:
    feed = Feed(agreement=agreements()["pebble"], policy=POLICY)
    assert feed.send(call(1, datetime(2100, 1, 1, tzinfo=UTC))).kind == OUT_OF_BOUNDS
    assert feed.send(call(2, NOW - timedelta(days=1))).kind == COUNTED
    assert feed.simulation.partitions[0].stream_time() == (NOW - timedelta(days=1)).timestamp()
