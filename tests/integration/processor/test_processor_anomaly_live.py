"""volume.anomaly on a real worker and broker: 28 steady days, then spike days, far below every cap.

Each licensee sends 5 calls a day for 28 days and one day more, then its spike day comes in a day
behind stream time (late, within the lateness: event time decides the day). The spike of 16 calls
raises exactly one warning; 51 calls raise the warning and the critical; 15 calls (3 times the
baseline) raise nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from processor_support import Topics, Workers, calls_of, demo_agreements, expected, produce, publish, read_all

from services.core import ids
from services.core.agreements import Agreement, parse_agreement
from services.core.events import ApiCall
from services.core.schemas import ALERT_TYPE, problems

pytestmark = pytest.mark.integration

TODAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
FIRST_DAY = TODAY - timedelta(days=31)
SPIKE_DAY = FIRST_DAY + timedelta(days=28)
MINUTE = timedelta(minutes=1)


def _agreement(licensee: str) -> Agreement:
    raw = next(a for a in demo_agreements() if a.licensee_id == "pebble").raw
    limits = {"calls_per_month": 10**6, "records_per_month": 10**9, "calls_per_minute": 1000}
    apps = [{"app_id": "pebble-app", "use_case": "charts"}, {"app_id": "pebble-batch", "use_case": "exports"}]
    return parse_agreement({**raw, "licensee_id": licensee, "name": licensee, "limits": limits, "apps": apps})


def _steady(licensee: str) -> list[ApiCall]:
    """5 calls a day on days 0-27 and 29."""
    calls: list[ApiCall] = []
    for day in [*range(28), 29]:
        calls += calls_of(licensee, 5, FIRST_DAY + timedelta(days=day, hours=1), MINUTE, first=len(calls))
    return calls


def _spike(licensee: str, app: int, batch: int) -> list[ApiCall]:
    """The spike day (28): `app` calls of pebble-app, then `batch` of pebble-batch, 2 records each."""
    start, first = SPIKE_DAY + timedelta(hours=2), 1000
    calls = calls_of(licensee, app, start, MINUTE, first=first, records=2)
    return calls + calls_of(
        licensee, batch, start + app * MINUTE, MINUTE, first=first + app, records=2, app="pebble-batch"
    )


def test_a_spike_day_raises_its_anomaly_once_with_the_evidence(
    broker: str, topics: Topics, tmp_path: Path
) -> None:
    shapes = {"anom-warn": (10, 6), "anom-crit": (40, 11), "anom-calm": (10, 5)}
    agreements = [_agreement(licensee) for licensee in shapes]
    publish(broker, topics, agreements)
    steady = sorted((c for licensee in shapes for c in _steady(licensee)), key=lambda c: c.time)
    calls = steady + [c for licensee, (app, batch) in shapes.items() for c in _spike(licensee, app, batch)]
    produce(broker, topics.input, calls)
    Workers(broker, topics, tmp_path).run_solo()

    alerts = read_all(broker, topics.alerts)
    assert {a["data"]["alert_id"] for a in alerts} == expected(calls, agreements)["alert_ids"]
    fired = sorted((a["data"]["licensee_id"], a["data"]["rule"], a["data"]["severity"]) for a in alerts)
    assert fired == [
        ("anom-crit", "volume.anomaly", "critical"),
        ("anom-crit", "volume.anomaly", "warning"),
        ("anom-warn", "volume.anomaly", "warning"),
    ]
    assert len(alerts) == 3  # each once, although a checkpoint may hold many calls past the threshold
    for alert in alerts:
        assert problems(ALERT_TYPE, alert) == []
        data = alert["data"]
        window_start = SPIKE_DAY.isoformat().replace("+00:00", "Z")
        assert (data["subject"], data["metric"], data["window_start"]) == ("calls", "calls", window_start)
        level = data["severity"]
        licensee = data["licensee_id"]
        assert data["alert_id"] == ids.alert_id("volume.anomaly", licensee, SPIKE_DAY, level, "calls")
        app = shapes[licensee][0]
        factor = 3.0 if level == "warning" else 10.0
        assert (data["observed"], data["limit"]) == (int(5 * factor) + 1, int(5 * factor))
        evidence = data["evidence"]
        assert (evidence["baseline"], evidence["factor"]) == (5, factor)
        # the top apps of the day as the alert fired: pebble-app's calls come first, then pebble-batch's
        by_app = {"pebble-app": min(data["observed"], app), "pebble-batch": max(0, data["observed"] - app)}
        tops = [{"app_id": name, "calls": n, "records": 2 * n} for name, n in by_app.items() if n]
        assert evidence["top_apps"] == sorted(tops, key=lambda top: (-top["calls"], top["app_id"]))
