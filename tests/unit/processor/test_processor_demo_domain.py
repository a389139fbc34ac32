"""The demo scenario run through the pure domain gives exactly the alerts its docstring promises."""

from __future__ import annotations

from collections import Counter

from processor_helpers import NOW, agreements

from services.demo.scenario import demo_calls
from services.processor.domain.state import LicenseeState
from services.processor.domain.step import COUNTED, Policy, Position, apply

EXPECTED = {
    ("omnisoft", "volume.warning", "warning", "calls"),
    ("omnisoft", "volume.breach", "critical", "calls"),
    ("omnisoft", "volume.severe", "critical", "calls"),
    ("omnisoft", "volume.warning", "warning", "records"),
    ("omnisoft", "volume.breach", "critical", "records"),
    ("omnisoft", "rate.breach", "critical", "calls"),
    ("omnisoft", "app.unregistered", "warning", "omni-shadow"),
    ("omnisoft", "government.unnotified", "critical", "gov-intel-agency"),
    ("oldco", "agreement.missing", "critical", ""),
}


def test_the_demo_scenario_raises_exactly_the_documented_alerts_and_bills_every_call() -> None:
    known = agreements()
    states: dict[str, LicenseeState] = {}
    alerts, usage, records = [], set(), Counter[str]()
    for offset, call in enumerate(demo_calls()):
        state = states.setdefault(call.licensee_id, LicenseeState(call.licensee_id))
        outcome = apply(state, call, Position(0, offset), known.get(call.licensee_id), NOW, Policy())
        assert outcome.kind == COUNTED
        alerts += [a["data"] for a in outcome.alerts]
        assert outcome.usage is not None
        usage.add(outcome.usage.usage_id)
        records[call.licensee_id] += outcome.usage.records
    assert {(a["licensee_id"], a["rule"], a["severity"], a["subject"]) for a in alerts} == EXPECTED
    assert len(alerts) == len(EXPECTED)
    rate = next(a for a in alerts if a["rule"] == "rate.breach")
    assert rate["window_start"] == "2026-10-20T10:15:00Z"
    assert len(usage) == 3590
    assert records == {"omnisoft": 81_000, "pebble": 3_000, "oldco": 250}
