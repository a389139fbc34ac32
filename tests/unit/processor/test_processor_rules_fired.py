"""`evaluate` with the fired markers: only unfired breaches, and no marker read below a fired level."""

from __future__ import annotations

from datetime import timedelta

import pytest
from processor_helpers import NOW, OCT, agreements, call, with_limits

from services.processor.domain import windows
from services.processor.domain.anomaly import DayUsage, day_window
from services.processor.domain.rules import Context, MonthUsage, evaluate, marker

MONTH = windows.month_window(OCT)
MINUTE = windows.minute_window(windows.minute_index(OCT))
DAY = int(OCT.timestamp() // 86_400)


def context(calls: int, records: int, minute_calls: int = 1, app: str = "pebble-app") -> Context:
    """A counted call of pebble (cap 10 calls, 100 records, 5 a minute; day baseline 10 calls)."""
    agreement = with_limits(
        agreements()["pebble"], calls_per_month=10, records_per_month=100, calls_per_minute=5
    )
    day = DayUsage(DAY, calls, records, {app: [calls, records]}, [10.0, 1000.0, 7])
    month = MonthUsage(calls, records)
    return Context(call(1, OCT, app=app), agreement, month, MONTH, minute_calls, MINUTE, NOW, day)


def volume_marker(severity_rule: str, metric: str) -> str:
    """The marker of a volume level of this month."""
    severity = "warning" if severity_rule == "volume.warning" else "critical"
    return marker(severity_rule, severity, MONTH, metric)


class Markers:
    """A fired-marker predicate over a fixed set, recording every marker it was asked about."""

    def __init__(self, fired: set[str]) -> None:
        self.fired = fired
        self.asked: list[str] = []

    def __call__(self, key: str) -> bool:
        self.asked.append(key)
        return key in self.fired


def held(breaches: list) -> list[tuple[str, str]]:
    """(rule, subject) of each breach, in order."""
    return [(b.rule, b.subject) for b in breaches]


def test_with_nothing_fired_it_returns_every_held_breach_in_the_same_order() -> None:
    ctx = context(calls=20, records=160, minute_calls=9, app="ghost-app")
    assert held(evaluate(ctx, Markers(set()))) == held(evaluate(ctx))
    assert ("volume.severe", "calls") in held(evaluate(ctx))


@pytest.mark.parametrize(
    ("fired", "expected_calls_levels"),
    [
        (set(), ["volume.warning", "volume.breach", "volume.severe"]),
        ({"volume.warning"}, ["volume.breach", "volume.severe"]),
        ({"volume.warning", "volume.breach"}, ["volume.severe"]),
        ({"volume.warning", "volume.breach", "volume.severe"}, []),
    ],
)
def test_volume_levels_that_fired_are_left_out_and_lower_levels_need_no_read(
    fired: set[str], expected_calls_levels: list[str]
) -> None:
    markers = Markers({volume_marker(rule, "calls") for rule in fired})
    found = evaluate(context(calls=20, records=1), markers)
    assert [b.rule for b in found if b.subject == "calls"] == expected_calls_levels
    asked = [key for key in markers.asked if key.endswith(":calls") and key.startswith("f:volume.")]
    # From the highest down, up to and including the first fired level; none below it.
    assert len(asked) == min(3, len(expected_calls_levels) + 1)


def test_a_fired_rate_or_app_breach_is_left_out_and_an_unfired_one_stays() -> None:
    ctx = context(calls=1, records=1, minute_calls=9, app="ghost-app")
    rate_fired = Markers({marker("rate.breach", "critical", MINUTE, "calls")})
    assert held(evaluate(ctx, rate_fired)) == [("app.unregistered", "ghost-app")]
    app_fired = Markers({marker("app.unregistered", "warning", MONTH, "ghost-app")})
    assert held(evaluate(ctx, app_fired)) == [("rate.breach", "calls")]


def test_anomaly_levels_fired_at_the_critical_level_leave_nothing_of_that_metric() -> None:
    ctx = context(calls=200, records=1)  # 20x a baseline of 10 calls: warning and critical
    assert [b.severity for b in evaluate(ctx) if b.rule == "volume.anomaly"] == ["warning", "critical"]
    critical = Markers({marker("volume.anomaly", "critical", day_window(DAY), "calls")})
    assert [b for b in evaluate(ctx, critical) if b.rule == "volume.anomaly"] == []
    warning = Markers({marker("volume.anomaly", "warning", day_window(DAY), "calls")})
    found = [b.severity for b in evaluate(ctx, warning) if b.rule == "volume.anomaly"]
    assert found == ["critical"]


def test_a_missing_agreement_that_fired_this_month_is_not_returned_again() -> None:
    ctx = context(calls=1, records=1)
    missing = Context(ctx.call, None, ctx.month, MONTH, 1, MINUTE, NOW + timedelta(seconds=1), None)
    assert held(evaluate(missing)) == [("agreement.missing", "")]
    assert evaluate(missing, Markers({marker("agreement.missing", "critical", MONTH)})) == []
