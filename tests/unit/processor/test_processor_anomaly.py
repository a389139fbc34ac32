"""volume.anomaly: a UTC day far above the licensee's trailing baseline, whatever its monthly caps say."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from processor_helpers import Feed, agreements, call, rules_fired, with_limits

from services.core import ids
from services.core.agreements import parse_agreement
from services.core.errors import ValidationFailed
from services.core.events import dumps, parse_time
from services.core.schemas import ALERT_TYPE, problems
from services.ledger.domain import alert_codec
from services.processor.domain import anomaly
from services.processor.domain.store import InMemoryPartition, Write

START = datetime(2026, 9, 1, tzinfo=UTC)  # the first steady day; the processor's clock is 2026-11-23
WIDE = {"calls_per_month": 10**9, "records_per_month": 10**12, "calls_per_minute": 10**6}


class Days:
    """Builds calls day by day (unique ids), `per_day` calls spread over the day's hours."""

    def __init__(self) -> None:
        self.n = 0

    def day(self, index: int, count: int, records: int = 10, app: str = "pebble-app") -> list[Any]:
        at = START + timedelta(days=index)
        out = []
        for i in range(count):
            self.n += 1
            offset = timedelta(seconds=i * 86_399 // max(count, 1))
            out.append(call(self.n, at + offset, records=records, app=app))
        return out

    def steady(self, days: int, per_day: int = 10) -> list[Any]:
        return [c for index in range(days) for c in self.day(index, per_day)]


def feed_for(**limits: Any) -> Feed:
    return Feed(agreement=with_limits(agreements()["pebble"], **{**WIDE, **limits}))


def anomalies(outcomes: list[Any]) -> list[tuple[str, str, str]]:
    return [fired for fired in rules_fired(outcomes) if fired[0] == "volume.anomaly"]


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        ([10] * 28, [10, 100, 28]),
        ([10] * 7, [10, 100, 7]),
        ([10] * 6, None),  # fewer than 7 days with traffic: no baseline
        ([None] * 21 + [10] * 7, [10, 100, 7]),  # quiet days do not count
        ([1, 2, 3, 4, 5, 6, 7, 8], [4.5, 45, 8]),  # the median of an even count: the middle pair's mean
        ([5] * 20 + [1000] * 8, [5, 50, 28]),  # a median: a few huge days do not move it
        ([10] * 6 + [None] * 23 + [99] * 5, None),  # older than 28 days: not in the window
    ],
)
def test_the_baseline_is_the_median_of_the_traffic_days_among_the_previous_28(
    counts: list[int | None], expected: list[float] | None
) -> None:
    state = InMemoryPartition().licensee("pebble")
    today = 20_000
    # counts[0] is the oldest day, the last one yesterday
    writes = [
        Write(anomaly.day_key(today - len(counts) + i), [n, n * 10, {}, None], None)
        for i, n in enumerate(counts) if n is not None
    ]  # fmt: skip
    state.apply(writes, 0.0)
    assert anomaly.baseline(state, today) == expected


W, C = ("volume.anomaly", "warning"), ("volume.anomaly", "critical")
WARN_BOTH = [(*W, "calls"), (*W, "records")]
ALL_FOUR = [(*W, "calls"), (*C, "calls"), (*W, "records"), (*C, "records")]


@pytest.mark.parametrize(
    ("spike", "factors", "expected"),
    [
        (30, {}, []),  # 3 x 10: within the default factor
        (31, {}, WARN_BOTH),
        (100, {}, WARN_BOTH),
        (101, {}, ALL_FOUR),
        (31, {"anomaly_factor": 5}, []),
        (51, {"anomaly_factor": 5, "anomaly_critical_factor": 6}, WARN_BOTH),
        (61, {"anomaly_factor": 5, "anomaly_critical_factor": 6}, ALL_FOUR),
        (16, {"anomaly_factor": 1.5, "anomaly_critical_factor": 2.5}, WARN_BOTH),
        (26, {"anomaly_factor": 1.5, "anomaly_critical_factor": 2.5}, ALL_FOUR),
    ],
)
def test_a_day_fires_once_per_level_above_the_factor_times_its_baseline(
    spike: int, factors: dict[str, float], expected: list[tuple[str, str, str]]
) -> None:
    days = Days()
    feed = feed_for(**factors)
    assert anomalies(feed.many(days.steady(28))) == []
    fired = feed.many(days.day(28, spike))
    assert sorted(anomalies(fired)) == sorted(expected)
    more = anomalies(feed.many(days.day(28, 500)))  # further calls raise only the levels not yet fired
    assert not set(more) & set(expected) and len(set(more)) == len(more)


@pytest.mark.parametrize(
    ("records", "expected"),
    [
        (10, []),
        (31, [("volume.anomaly", "warning", "records")]),  # same calls, 3.1x the records
        (101, [("volume.anomaly", "warning", "records"), ("volume.anomaly", "critical", "records")]),
    ],
)
def test_records_are_judged_apart_from_calls(records: int, expected: list[tuple[str, str, str]]) -> None:
    days = Days()
    feed = feed_for()
    feed.many(days.steady(28))
    assert anomalies(feed.many(days.day(28, 10, records=records))) == expected


@pytest.mark.parametrize(("traffic_days", "fires"), [(6, False), (7, True), (28, True)])
def test_a_baseline_needs_seven_days_with_traffic(traffic_days: int, fires: bool) -> None:
    days = Days()
    feed = feed_for()
    # traffic on the last `traffic_days` of the 28 days before the spike, nothing before
    feed.many([c for index in range(28 - traffic_days, 28) for c in days.day(index, 10)])
    assert bool(anomalies(feed.many(days.day(28, 200)))) is fires


def test_it_fires_far_below_the_monthly_cap_with_the_evidence_and_a_deterministic_id() -> None:
    days = Days()
    feed = feed_for(calls_per_month=10**6)
    feed.many(days.steady(28))
    spike = days.day(28, 20) + days.day(28, 11, app="pebble-batch") + days.day(28, 1, app="pebble-cli")
    outcomes = feed.many(spike)
    alerts = [a for o in outcomes for a in o.alerts if a["data"]["rule"] == "volume.anomaly"]
    calls_alert = next(a for a in alerts if a["data"]["subject"] == "calls")
    data = calls_alert["data"]
    window = parse_time(data["window_start"])
    assert (data["window_start"], data["window_end"]) == ("2026-09-29T00:00:00Z", "2026-09-30T00:00:00Z")
    assert (data["severity"], data["metric"], data["observed"], data["limit"]) == ("warning", "calls", 31, 30)
    evidence = data["evidence"]
    assert (evidence["baseline"], evidence["factor"]) == (10, 3.0)
    assert evidence["top_apps"] == [
        {"app_id": "pebble-app", "calls": 20, "records": 200},
        {"app_id": "pebble-batch", "calls": 11, "records": 110},
    ]
    assert evidence["event_ids"] == [spike[30].event_id]  # the crossing call
    assert data["alert_id"] == ids.alert_id("volume.anomaly", "pebble", window, "warning", "calls")
    assert problems(ALERT_TYPE, calls_alert) == []
    row = alert_codec.to_row(alert_codec.decode(dumps(calls_alert)), "alerts", 0, 7)  # the ledger takes it
    assert row[2:4] == ("volume.anomaly", "warning")


def test_other_alerts_keep_their_evidence_as_before() -> None:
    feed = feed_for(calls_per_month=1)
    alert = feed.send(call(1, START)).alerts[0]
    assert set(alert["data"]["evidence"]) == {"event_ids", "app_id", "org_id", "org_type", "event_time"}


def test_a_late_call_raises_its_own_days_alert() -> None:
    days = Days()
    feed = feed_for()
    feed.many(days.steady(28))
    feed.many(days.day(28, 30))  # the spike day, just within the factor
    later = [c for index in range(29, 34) for c in days.day(index, 10)]
    assert anomalies(feed.many(later)) == []  # five more days: the spike day is 5 days behind stream time
    late = feed.send(days.day(28, 1)[0])
    assert late.kind == "counted"
    assert [(a["data"]["rule"], a["data"]["window_start"]) for a in late.alerts] == [
        ("volume.anomaly", "2026-09-29T00:00:00Z"),
        ("volume.anomaly", "2026-09-29T00:00:00Z"),
    ]  # calls and records


class CountingReader:
    """A state reader that counts reads of day keys."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.day_reads = inner, 0

    def get(self, key: str) -> Any:
        self.day_reads += key.startswith(anomaly.DAY_PREFIX)
        return self.inner.get(key)


def test_only_a_days_first_call_reads_the_trailing_days() -> None:
    days = Days()
    feed = feed_for()
    feed.many(days.steady(28))
    state = feed.simulation.partitions[0].licensee("pebble")
    first, second = days.day(28, 2)
    reads = []
    for c in (first, second):
        reader = CountingReader(state)
        writes: list[Write] = []
        day = anomaly.count(writes, reader, c, c.time.timestamp(), 7 * 86_400)
        state.apply(writes, c.time.timestamp())
        reads.append(reader.day_reads)
        assert day.baseline == [10, 100, 28]
    assert reads == [1 + 28, 1]


def test_a_day_key_expires_a_baseline_and_the_lateness_after_its_end() -> None:
    feed = feed_for()
    feed.send(call(1, START))
    state = feed.simulation.partitions[0].licensee("pebble")
    day_end = START + timedelta(days=1)
    feed.send(call(2, day_end + timedelta(days=29 + 7)))  # a week and 29 days past the day's end
    assert state.get("y:2026-09-01") is not None
    feed.send(call(3, day_end + timedelta(days=29 + 7, seconds=2)))  # and the 2 s margin
    assert state.get("y:2026-09-01") is None


def _limits(**extra: Any) -> dict[str, Any]:
    raw = agreements()["pebble"].raw
    return {**raw, "limits": {**raw["limits"], **extra}}


@pytest.mark.parametrize(
    ("extra", "factors"),
    [
        ({}, (3.0, 10.0)),
        ({"anomaly_factor": 2}, (2, 10.0)),
        ({"anomaly_factor": 4.5, "anomaly_critical_factor": 6}, (4.5, 6)),
        ({"anomaly_critical_factor": 1000}, (3.0, 1000)),
    ],
)
def test_the_anomaly_factors_are_per_agreement_with_defaults(
    extra: dict[str, Any], factors: tuple[float, float]
) -> None:
    limits = parse_agreement(_limits(**extra)).limits
    assert (limits.anomaly_factor, limits.anomaly_critical_factor) == factors


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"anomaly_factor": 1}, "limits.anomaly_factor"),  # a factor must lie above 1
        ({"anomaly_factor": 0.5}, "limits.anomaly_factor"),
        ({"anomaly_factor": "3"}, "limits.anomaly_factor"),
        ({"anomaly_factor": 1001}, "limits.anomaly_factor"),
        ({"anomaly_critical_factor": True}, "limits.anomaly_critical_factor"),
        ({"anomaly_factor": 5, "anomaly_critical_factor": 5}, "limits.anomaly_critical_factor"),
        ({"anomaly_factor": 20}, "limits.anomaly_critical_factor"),  # above the default critical 10
        ({"anomaly_fator": 5}, "limits"),  # a misspelt field is refused, not ignored
    ],
)
def test_bad_anomaly_factors_are_refused_naming_the_field(extra: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_agreement(_limits(**extra))
    assert field in {p["field"] for p in caught.value.problems}
