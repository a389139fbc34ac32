"""The demo scenario run through the pure domain gives exactly the alerts its docstring promises."""

from __future__ import annotations

from processor_helpers import NOW, agreements

from services.demo.scenario import demo_calls
from services.processor.domain.simulate import Simulation, by_licensee
from services.processor.domain.step import COUNTED

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
    simulation = Simulation(by_licensee(agreements().values()), NOW)
    alerts = []
    for call in demo_calls():
        decision = simulation.feed(call)
        assert decision.kind == COUNTED
        alerts += decision.alerts
    assert {(a.licensee_id, a.rule, a.severity, a.subject) for a in alerts} == EXPECTED
    assert len(alerts) == len(EXPECTED) == len(simulation.alert_ids)
    rate = next(a for a in alerts if a.rule == "rate.breach")
    assert rate.window_start.isoformat() == "2026-10-20T10:15:00+00:00"
    assert simulation.billed_calls() == 3590
    assert simulation.records == {"omnisoft": 81_000, "pebble": 3_000, "oldco": 250}
