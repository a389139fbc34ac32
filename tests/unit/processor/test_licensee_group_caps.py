"""Licensee groups: a group record's caps judge the sum of its members' month, once per level and metric."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from processor_helpers import NOW, Feed, agreements, call

from services.core import ids
from services.core.agreements import load_agreements, parse_agreement
from services.core.errors import ValidationFailed
from services.core.events import AlertRaised, dumps, loads
from services.core.schemas import ALERT_TYPE, problems
from services.processor.domain.groups import GroupCall, caps_apply, decide_group, group_call
from services.processor.domain.store import InMemoryPartition
from services.processor.handler import group_emits

OCT = datetime(2026, 10, 1, tzinfo=UTC)
RETENTION = 400 * 86400.0
WARN, BREACH, SEVERE = (
    ("volume.warning", "warning"),
    ("volume.breach", "critical"),
    ("volume.severe", "critical"),
)


def group(**limits: Any) -> Any:
    caps = limits or {"calls_per_month": 10}
    return parse_agreement({
        "licensee_id": "northwind", "kind": "group", "name": "Northwind Holdings",
        "effective_from": "2026-01-01", "effective_to": None, "limits": caps,
    })  # fmt: skip


def member(licensee: str, parent: str | None = "northwind") -> Any:
    return parse_agreement({**agreements()["pebble"].raw, "licensee_id": licensee, "parent_id": parent})


def run(calls: list[tuple[str, int]], record: Any) -> list[tuple[Any, ...]]:
    """Feed (member, records) calls through the group stage's decision; the alerts fired, in order."""
    partition, fired = InMemoryPartition(), []
    state = partition.licensee("northwind")
    for n, (licensee, records) in enumerate(calls):
        at = OCT + timedelta(minutes=n)
        found = group_call(call(n, at, licensee=licensee, records=records), member(licensee))
        assert found is not None
        decision = decide_group(found, state, record, NOW, RETENTION)
        state.apply(decision.writes, at.timestamp())
        fired += [((a.rule, a.severity), a.metric or "", a.observed, a.member_id) for a in decision.alerts]
    return fired


@pytest.mark.parametrize(
    ("calls", "caps", "expected"),
    [
        # Each member far below any cap of its own; their sum crosses the group's 10 calls.
        ([("nw-eu", 1), ("nw-us", 1)] * 3, {}, []),
        ([("nw-eu", 1), ("nw-us", 1)] * 5, {}, [(WARN, "calls", 8, "nw-us"), (BREACH, "calls", 10, "nw-us")]),
        ([("nw-eu", 1)] * 15, {},
         [(WARN, "calls", 8, "nw-eu"), (BREACH, "calls", 10, "nw-eu"), (SEVERE, "calls", 15, "nw-eu")]),
        ([("nw-eu", 60), ("nw-us", 60)], {"records_per_month": 100},
         [(WARN, "records", 120, "nw-us"), (BREACH, "records", 120, "nw-us")]),
        ([("nw-eu", 1)] * 3, {"calls_per_month": 4, "warning_ratio": 0.5}, [(WARN, "calls", 2, "nw-eu")]),
    ],
)  # fmt: skip
def test_a_group_cap_fires_once_on_the_member_call_that_takes_the_sum_across_it(
    calls: list[tuple[str, int]], caps: dict[str, Any], expected: list[tuple[Any, ...]]
) -> None:
    assert run(calls, group(**caps)) == expected


@pytest.mark.parametrize(
    ("record", "why"),
    [(None, "a parent with no group record only rolls up"),
     (member("northwind", None), "a parent that is a licensee has no group caps")],
)  # fmt: skip
def test_a_parent_without_a_group_record_counts_but_never_alerts(record: Any, why: str) -> None:
    assert run([("nw-eu", 1)] * 30, record) == [], why


def test_a_group_record_applies_only_inside_its_dates() -> None:
    ended = parse_agreement({**group().raw, "effective_to": "2026-09-30"})
    assert caps_apply(ended, OCT) is False
    assert caps_apply(group(), OCT) is True


def test_a_group_alert_names_the_group_as_subject_with_an_id_per_metric_and_a_valid_envelope() -> None:
    partition = InMemoryPartition()
    state = partition.licensee("northwind")
    record = group(calls_per_month=1, records_per_month=1)
    found = GroupCall("northwind", "nw-eu", "e-1", OCT, 5, "app", "org-1", "commercial")
    alerts = decide_group(found, state, record, NOW, RETENTION).alerts
    assert {(a.licensee_id, a.subject, a.metric) for a in alerts} == {
        ("northwind", "northwind", "calls"),
        ("northwind", "northwind", "records"),
    }
    # calls 1 of 1: warning and breach; records 5 of 1: severe too. Five levels, five ids.
    assert len({a.alert_id for a in alerts}) == len(alerts) == 5
    for alert in alerts:
        envelope = alert.to_cloudevent()
        assert problems(ALERT_TYPE, envelope) == []
        assert envelope["data"]["evidence"]["member_id"] == "nw-eu"


def test_a_licensee_alert_keeps_the_id_it_had_before_groups() -> None:
    before = ids.alert_id("volume.breach", "omnisoft", OCT, "critical", "calls")
    alert = AlertRaised("omnisoft", "volume.breach", "critical", OCT, OCT, NOW, "calls", "calls", 1, 1)
    assert alert.alert_id == before


def test_a_group_call_goes_to_the_group_stage_keyed_by_the_group_and_reads_back_the_same() -> None:
    one = call(1, OCT, licensee="nw-eu", records=7)
    [emit] = group_emits("groups", one, member("nw-eu"))
    assert emit.key == b"northwind"
    assert GroupCall.from_dict(loads(emit.value)) == group_call(one, member("nw-eu"))
    assert group_emits("groups", one, member("nw-eu", None)) == []
    assert group_emits("groups", one, None) == []


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"parent_id": "pebble"}, "parent_id"),
    ],
)
def test_an_agreement_naming_itself_as_parent_is_refused_naming_parent_id(
    changes: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_agreement({**agreements()["pebble"].raw, **changes})
    assert [p["field"] for p in caught.value.problems] == [field]


@pytest.mark.parametrize(
    ("changes", "fields"),
    [
        ({"limits": {"calls_per_minute": 5, "calls_per_month": 5}}, ["limits.calls_per_minute"]),
        ({"limits": {"warning_ratio": 0.5}}, ["limits"]),
        ({"plan": agreements()["pebble"].raw["plan"]}, ["plan"]),
        ({"apps": []}, ["apps"]),
        ({"parent_id": "holding"}, ["parent_id"]),
        ({"kind": "team"}, ["kind"]),
    ],
)
def test_a_group_record_holds_only_month_caps_and_anything_else_is_refused_naming_the_field(
    changes: dict[str, Any], fields: list[str]
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_agreement({**group().raw, **changes})
    assert fields[0] in [p["field"] for p in caught.value.problems]


def _file(tmp_path: Path, *items: dict[str, Any]) -> Path:
    path = tmp_path / "agreements.json"
    path.write_text(dumps({"agreements": list(items)}).decode(), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("links", "reason"),
    [
        ({"a": "b", "b": "a"}, "a -> b -> a is a cycle"),
        ({"a": "b", "b": "c"}, "b belongs to c itself: groups are one level deep"),
    ],
)
def test_a_file_whose_parents_form_a_cycle_or_nest_is_refused_with_the_index_and_parent_id(
    tmp_path: Path, links: dict[str, str], reason: str
) -> None:
    base = agreements()["pebble"].raw
    items = [{**base, "licensee_id": child, "parent_id": parent} for child, parent in links.items()]
    with pytest.raises(ValidationFailed) as caught:
        load_agreements(_file(tmp_path, *items))
    assert {"index": 0, "field": "parent_id", "reason": reason} in caught.value.problems


def test_a_file_with_a_group_and_its_members_loads(tmp_path: Path) -> None:
    base = agreements()["pebble"].raw
    items = [group().raw, {**base, "licensee_id": "nw-eu", "parent_id": "northwind"}]
    loaded = load_agreements(_file(tmp_path, *items))
    assert [(a.licensee_id, a.kind, a.parent_id) for a in loaded] == [
        ("northwind", "group", None),
        ("nw-eu", "licensee", "northwind"),
    ]


def test_a_call_made_under_a_group_id_is_judged_as_having_no_agreement() -> None:
    outcome = Feed("northwind", agreement=group()).send(call(1, OCT, licensee="northwind"))
    assert [a["data"]["rule"] for a in outcome.alerts] == ["agreement.missing"]
