"""Licensee groups on a real worker and broker: the members' sum passes the group's cap, while each member
stays far below its own, and the group's alerts name the group, counted exactly once.

Three accounts of one company (on different input partitions) make 39, 39 and 40 calls in one month;
the group record caps the company at 100 calls a month (severe at 1.2, 120 calls). A gateway re-sends
30 of those calls: were they counted again the sum would reach 148 and the severe level would fire.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient
from processor_support import (
    Topics,
    Workers,
    calls_of,
    committed_everything,
    demo_agreements,
    produce,
    publish,
    read_all,
    wait_counted,
    wait_until,
)

from services.core import topics as core_topics
from services.core.agreements import Agreement, parse_agreement
from services.core.schemas import ALERT_TYPE, problems

pytestmark = pytest.mark.integration

THIS_MONTH = datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
MONTH = (THIS_MONTH - timedelta(days=1)).replace(day=1)  # last month: always in the past, within bounds
GROUP = "igroup-northwind"
MEMBERS = {"igroup-nw-eu": 39, "igroup-nw-us": 39, "igroup-nw-apac": 40}


def _member(licensee: str) -> Agreement:
    raw = next(a for a in demo_agreements() if a.licensee_id == "pebble").raw
    limits = {"calls_per_month": 1000, "records_per_month": 10**6, "calls_per_minute": 1000}
    changes = {"licensee_id": licensee, "name": licensee, "limits": limits, "parent_id": GROUP}
    return parse_agreement({**raw, **changes})


def _group(calls_per_month: int = 100, severe_ratio: float = 1.2) -> Agreement:
    return parse_agreement({
        "licensee_id": GROUP, "kind": "group", "name": "Northwind Holdings (every Northwind account)",
        "effective_from": "2026-01-01", "effective_to": None,
        "limits": {"calls_per_month": calls_per_month, "severe_ratio": severe_ratio},
    })  # fmt: skip


def _drained(workers: Workers, broker: str) -> None:
    """Wait until the input and the group stage's topic are committed to their ends."""
    workers.wait_drained()
    group_topic = core_topics.group_usage(workers.app_id)
    wait_until(
        lambda: committed_everything(broker, workers.app_id, group_topic), 120, "the group stage to drain"
    )


def _outputs(broker: str, topics: Topics, group_topic: str) -> tuple[list[Any], list[Any]]:
    """The alerts' data and the committed group calls; the group topic (the test's own) is deleted."""
    try:
        return [a["data"] for a in read_all(broker, topics.alerts)], read_all(broker, group_topic)
    finally:
        AdminClient({"bootstrap.servers": broker}).delete_topics([group_topic])


def test_a_group_cap_fires_with_the_group_as_subject_when_only_the_members_sum_passes_it(
    broker: str, topics: Topics, tmp_path: Path
) -> None:
    publish(broker, topics, [_group(), *(_member(m) for m in MEMBERS)])
    start, minute = MONTH + timedelta(hours=1), timedelta(minutes=1)
    each = [calls_of(m, n, start + i * 7 * minute, minute) for i, (m, n) in enumerate(MEMBERS.items())]
    calls = sorted((c for member in each for c in member), key=lambda c: c.time)
    resent = calls[10:40]
    produce(broker, topics.input, [*calls, *resent])
    workers = Workers(broker, topics, tmp_path)
    group_topic = core_topics.group_usage(workers.app_id)
    try:
        workers.start("solo")
        _drained(workers, broker)
    finally:
        workers.stop_all()
    alerts, group_calls = _outputs(broker, topics, group_topic)

    assert len(group_calls) == sum(MEMBERS.values())  # one per counted call, none per duplicate
    assert not [a for a in alerts if a["licensee_id"] in MEMBERS]  # every member within its own caps
    fired = sorted((a["rule"], a["severity"], a["subject"], a["metric"], a["observed"]) for a in alerts)
    assert fired == [
        ("volume.breach", "critical", GROUP, "calls", 100),
        ("volume.warning", "warning", GROUP, "calls", 80),
    ]
    # The crossing call is the 100th the group stage counted (members interleave across partitions).
    breach = next(a for a in alerts if a["rule"] == "volume.breach")
    by_id = {c.event_id: c.licensee_id for c in calls}
    [crossing] = breach["evidence"]["event_ids"]
    assert breach["evidence"]["member_id"] == by_id[crossing]
    assert (breach["licensee_id"], breach["limit"]) == (GROUP, 100)
    for alert in read_all(broker, topics.alerts):
        assert problems(ALERT_TYPE, alert) == []


def test_a_worker_killed_mid_stream_counts_each_member_call_in_its_group_once(
    broker: str, topics: Topics, tmp_path: Path
) -> None:
    # 1,500 unique calls against a group cap of 1,000 whose severe level starts at 1,501: one call of a
    # member counted twice in the group, by the re-read after the kill, would raise it.
    publish(broker, topics, [_group(1000, 1.501), *(_member(m) for m in MEMBERS)])
    start, minute = MONTH + timedelta(hours=1), timedelta(minutes=1)
    each = [calls_of(m, 500, start, minute / 20, first=0) for m in MEMBERS]
    produce(broker, topics.input, sorted((c for member in each for c in member), key=lambda c: c.time))
    workers = Workers(broker, topics, tmp_path)
    group_topic = core_topics.group_usage(workers.app_id)
    try:
        wait_counted(workers.start("solo"), 600)
        workers.started[-1].kill()
        workers.start("solo")
        _drained(workers, broker)
    finally:
        workers.stop_all()
    alerts, group_calls = _outputs(broker, topics, group_topic)
    assert len({c["event_id"] for c in group_calls}) == len(group_calls) == 1500
    assert sorted((a["rule"], a["observed"]) for a in alerts) == [
        ("volume.breach", 1000),
        ("volume.warning", 800),
    ]
