"""Agreement rules: each fires at its threshold, with the documented severity and subject."""

from __future__ import annotations

from datetime import timedelta

import pytest
from processor_helpers import OCT, Feed, agreements, call, rules_fired, with_limits

from services.processor.domain.rules import threshold


@pytest.mark.parametrize(
    ("limit", "ratio", "expected"),
    [
        (2000, 0.8, 1600),
        (2000, 1.0, 2000),
        (2000, 1.5, 3000),
        (10, 0.8, 8),
        (3, 0.8, 3),
        (1, 0.5, 1),
        (7, 1.5, 11),
    ],
)
def test_a_threshold_is_the_smallest_count_reaching_the_ratio(
    limit: int, ratio: float, expected: int
) -> None:
    assert threshold(limit, ratio) == expected


@pytest.mark.parametrize(
    ("calls", "expected"),
    [
        (7, []),
        (8, [("volume.warning", "warning", "calls")]),
        (10, [("volume.warning", "warning", "calls"), ("volume.breach", "critical", "calls")]),
        (
            15,
            [
                ("volume.warning", "warning", "calls"),
                ("volume.breach", "critical", "calls"),
                ("volume.severe", "critical", "calls"),
            ],
        ),
        (
            40,
            [
                ("volume.warning", "warning", "calls"),
                ("volume.breach", "critical", "calls"),
                ("volume.severe", "critical", "calls"),
            ],
        ),
    ],
)
def test_volume_alerts_on_calls_fire_once_per_level_as_the_count_crosses_it(
    calls: int, expected: list[tuple[str, str, str]]
) -> None:
    agreement = with_limits(
        agreements()["pebble"], calls_per_month=10, records_per_month=10**9, calls_per_minute=10**6
    )
    feed = Feed(agreement=agreement)
    outcomes = feed.many([call(i, OCT + timedelta(minutes=i), records=1) for i in range(calls)])
    assert rules_fired(outcomes) == expected


def test_volume_alerts_on_records_carry_observed_limit_and_the_crossing_event() -> None:
    agreement = with_limits(agreements()["pebble"], calls_per_month=10**6, records_per_month=100)
    feed = Feed(agreement=agreement)
    outcomes = feed.many([call(i, OCT + timedelta(minutes=i), records=30) for i in range(6)])
    fired = [(i, a["data"]) for i, o in enumerate(outcomes) for a in o.alerts]
    assert [(i, d["rule"], d["observed"], d["limit"], d["metric"]) for i, d in fired] == [
        (2, "volume.warning", 90, 100, "records"),
        (3, "volume.breach", 120, 100, "records"),
        (4, "volume.severe", 150, 100, "records"),
    ]
    assert fired[0][1]["evidence"]["event_ids"] == ["pebble-2"]
    assert fired[0][1]["window_start"] == "2026-10-01T00:00:00Z"
    assert fired[0][1]["window_end"] == "2026-11-01T00:00:00Z"


def test_one_call_with_many_records_can_cross_every_level_at_once() -> None:
    agreement = with_limits(agreements()["pebble"], records_per_month=100)
    outcome = Feed(agreement=agreement).send(call(1, OCT, records=500))
    assert [r for r, _, s in rules_fired([outcome]) if s == "records"] == [
        "volume.warning",
        "volume.breach",
        "volume.severe",
    ]


@pytest.mark.parametrize(("in_one_minute", "fires"), [(60, False), (61, True), (200, True)])
def test_rate_breach_fires_once_when_one_utc_minute_has_more_calls_than_allowed(
    in_one_minute: int, fires: bool
) -> None:
    feed = Feed(agreement=with_limits(agreements()["pebble"], calls_per_month=10**6, records_per_month=10**9))
    start = OCT + timedelta(hours=5)
    outcomes = feed.many([call(i, start + timedelta(milliseconds=250 * i)) for i in range(in_one_minute)])
    rate = [a["data"] for o in outcomes for a in o.alerts if a["data"]["rule"] == "rate.breach"]
    assert len(rate) == (1 if fires else 0)
    if fires:
        assert (rate[0]["observed"], rate[0]["limit"], rate[0]["severity"]) == (61, 60, "critical")
        assert rate[0]["window_start"] == "2026-10-01T05:00:00Z"
        assert rate[0]["window_end"] == "2026-10-01T05:01:00Z"


def test_calls_split_across_two_minutes_do_not_breach_the_rate() -> None:
    feed = Feed(agreement=agreements()["pebble"])
    start = OCT + timedelta(hours=5, seconds=30)
    outcomes = feed.many([call(i, start + timedelta(milliseconds=500 * i)) for i in range(100)])
    assert not [r for r in rules_fired(outcomes) if r[0] == "rate.breach"]


def test_two_breached_minutes_raise_two_rate_alerts() -> None:
    feed = Feed(agreement=agreements()["pebble"])
    calls = [call(i, OCT + timedelta(minutes=i // 61, seconds=(i % 61) * 0.5)) for i in range(122)]
    assert [r[0] for r in rules_fired(feed.many(calls))].count("rate.breach") == 2


@pytest.mark.parametrize(
    ("licensee", "app", "expected"),
    [
        ("omnisoft", "omni-search", []),
        ("omnisoft", "omni-devtools", []),  # registered, even without a use case
        ("omnisoft", "omni-shadow", [("app.unregistered", "warning", "omni-shadow")]),
        ("pebble", "pebble-app", []),
    ],
)
def test_an_unregistered_app_raises_one_warning_per_app_and_month(
    licensee: str, app: str, expected: list[tuple[str, str, str]]
) -> None:
    feed = Feed(licensee, agreements()[licensee])
    outcomes = feed.many([call(i, OCT + timedelta(hours=i), licensee, app) for i in range(5)])
    assert rules_fired(outcomes) == expected


@pytest.mark.parametrize(
    ("licensee", "org", "org_type", "expected"),
    [
        (
            "omnisoft",
            "gov-intel-agency",
            "government",
            [("government.unnotified", "critical", "gov-intel-agency")],
        ),
        ("omnisoft", "gov-statistics-office", "government", []),  # notified in September
        ("omnisoft", "gov-intel-agency", "commercial", []),  # only government use needs notice
        ("pebble", "gov-x", "government", [("government.unnotified", "critical", "gov-x")]),  # prohibited
    ],
)
def test_government_use_without_prior_notice_raises_one_critical_alert_per_org_and_month(
    licensee: str, org: str, org_type: str, expected: list[tuple[str, str, str]]
) -> None:
    app = "omni-cloud" if licensee == "omnisoft" else "pebble-app"
    feed = Feed(licensee, agreements()[licensee])
    outcomes = feed.many(
        [call(i, OCT + timedelta(hours=i), licensee, app, org=org, org_type=org_type) for i in range(5)]
    )
    assert rules_fired(outcomes) == expected


def test_a_notice_dated_after_the_call_does_not_make_it_allowed() -> None:
    omnisoft = agreements()["omnisoft"]
    feed = Feed("omnisoft", omnisoft)
    early = call(
        1,
        omnisoft.first_notice("gov-statistics-office") - timedelta(days=1),  # type: ignore[operator]
        "omnisoft",
        "omni-research",
        org="gov-statistics-office",
        org_type="government",
    )
    assert rules_fired([feed.send(early)]) == [("government.unnotified", "critical", "gov-statistics-office")]


@pytest.mark.parametrize(
    ("licensee", "known"),
    [("oldco", True), ("nobody", False)],
)
def test_a_call_without_an_active_agreement_raises_agreement_missing_once_per_month(
    licensee: str, known: bool
) -> None:
    feed = Feed(licensee, agreements().get(licensee) if known else None)
    nov = OCT.replace(month=11)
    outcomes = feed.many(
        [call(i, OCT + timedelta(days=i), licensee) for i in range(10)]
        + [call(100 + i, nov + timedelta(days=i), licensee) for i in range(3)]
    )
    fired = [a["data"] for o in outcomes for a in o.alerts]
    assert [(d["rule"], d["severity"], d["window_start"]) for d in fired] == [
        ("agreement.missing", "critical", "2026-10-01T00:00:00Z"),
        ("agreement.missing", "critical", "2026-11-01T00:00:00Z"),
    ]
    assert all(o.billed for o in outcomes)  # usage is still billable evidence


def test_the_month_boundary_starts_new_volume_windows() -> None:
    agreement = with_limits(agreements()["pebble"], calls_per_month=10, records_per_month=10**9)
    feed = Feed(agreement=agreement)
    october = [call(i, OCT.replace(day=31, hour=23) + timedelta(seconds=i), records=1) for i in range(8)]
    november = [call(100 + i, OCT.replace(month=11) + timedelta(seconds=i), records=1) for i in range(8)]
    fired = [a["data"] for o in feed.many(october + november) for a in o.alerts]
    assert [(d["rule"], d["window_start"]) for d in fired] == [
        ("volume.warning", "2026-10-01T00:00:00Z"),
        ("volume.warning", "2026-11-01T00:00:00Z"),
    ]


def test_every_volume_level_fires_once_even_when_the_warning_ratio_is_above_the_cap() -> None:
    agreement = with_limits(
        agreements()["pebble"], calls_per_month=10, records_per_month=10**9, calls_per_minute=10**6,
        warning_ratio=1.2, severe_ratio=1.5,
    )  # fmt: skip
    outcomes = Feed(agreement=agreement).many([call(i, OCT + timedelta(minutes=i)) for i in range(16)])
    fired = [(i, a["data"]["rule"]) for i, o in enumerate(outcomes) for a in o.alerts]
    assert fired == [(9, "volume.breach"), (11, "volume.warning"), (14, "volume.severe")]
