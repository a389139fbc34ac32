"""The demo scenario run through the pure domain gives exactly the alerts its docstring promises: each
licensee's own (the member stage), and the licensee group's over its members' sum (the group stage)."""

from __future__ import annotations

from processor_helpers import NOW, agreements

from services.demo.scenario import demo_calls
from services.processor.domain.groups import decide_group, group_call
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
    assert simulation.billed_calls() == 4190
    assert simulation.records == {
        "omnisoft": 81_000, "pebble": 3_000, "oldco": 250, "halcyon-news": 3_000, "halcyon-tv": 3_000,
    }  # fmt: skip


def test_the_demo_group_passes_its_cap_on_its_members_sum_while_each_member_stays_within_its_own() -> None:
    known = agreements()
    state: dict[str, object] = {}
    alerts = []
    for call in demo_calls():
        member = group_call(call, known.get(call.licensee_id))
        if member is None:
            continue
        decision = decide_group(member, state, known[member.group_id], NOW, 0.0)
        state.update((w.key, w.value) for w in decision.writes)
        alerts += decision.alerts
    assert decision.month.calls == 600 and decision.month.records == 6_000
    fired = [(a.licensee_id, a.rule, a.severity, a.subject, a.metric, a.observed, a.limit) for a in alerts]
    assert fired == [
        ("halcyon", "volume.warning", "warning", "halcyon", "calls", 400, 500),
        ("halcyon", "volume.breach", "critical", "halcyon", "calls", 500, 500),
    ]
    # In event-time order the accounts alternate, news first: the 400th and 500th calls are halcyon-tv's.
    assert [a.event_ids for a in alerts] == [("halcyon-tv-000199",), ("halcyon-tv-000249",)]
