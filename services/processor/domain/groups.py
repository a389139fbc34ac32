"""Licensee groups: each group's calendar month over the sum of its members, judged by the group's caps.

An account's agreement names its group in `parent_id`; the group's own record (kind "group") carries caps
over the members' sum. Members live on other input partitions than each other, so a member's counted call
sends a small `GroupCall` keyed by the group to the processor's group stage (services/processor/groups.py),
where the group's month is counted here and judged with the licensee rule code (`rules.month_caps`).
Exactly once: the group call leaves in the member's Kafka transaction, and the group stage's state, alerts
and offsets commit in one transaction too. Pure: no Kafka, no quix, no clock of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.core.agreements import Agreement
from services.core.events import AlertRaised, ApiCall, format_time, parse_time
from services.processor.domain import windows
from services.processor.domain.rules import Breach, MonthUsage, month_caps
from services.processor.domain.store import StateReader, Write

MONTH_PREFIX = "g:"
# Expiry past the bound: the store drops a value once the high-water reaches its expiry.
_MARGIN = 2.0


@dataclass(frozen=True, slots=True)
class GroupCall:
    """One counted call of a group member, as the group stage needs it (the crossing call's evidence)."""

    group_id: str
    member_id: str
    event_id: str
    time: datetime
    records: int
    app_id: str
    org_id: str | None = None
    org_type: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form sent on the group stage's topic."""
        return {
            "group_id": self.group_id, "member_id": self.member_id, "event_id": self.event_id,
            "time": format_time(self.time), "records": self.records, "app_id": self.app_id,
            "org_id": self.org_id, "org_type": self.org_type,
        }  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GroupCall:
        """Read the JSON form back; KeyError, TypeError or ValueError when it is not one."""
        records = data["records"]
        if not isinstance(records, int) or isinstance(records, bool) or records < 0:
            raise ValueError(f"records: expected a count, got {records!r}")
        return cls(
            str(data["group_id"]), str(data["member_id"]), str(data["event_id"]), parse_time(data["time"]),
            records, str(data["app_id"]), data.get("org_id"), data.get("org_type"),
        )  # fmt: skip


def group_call(call: ApiCall, agreement: Agreement | None) -> GroupCall | None:
    """What a counted call sends to its group's stage; None for a licensee without a group."""
    if agreement is None or agreement.parent_id is None:
        return None
    return GroupCall(
        agreement.parent_id, call.licensee_id, call.event_id, call.time, call.records, call.app_id,
        call.org_id, call.org_type,
    )  # fmt: skip


@dataclass(slots=True)
class GroupDecision:
    """What one member call did to its group: the writes, the alerts, and the group's month after it."""

    month: MonthUsage
    writes: list[Write] = field(default_factory=list)
    alerts: list[AlertRaised] = field(default_factory=list)


def caps_apply(group: Agreement | None, at: datetime) -> bool:
    """Whether a group record with caps is in force at `at` (a parent without one only rolls up)."""
    return group is not None and group.is_group and group.is_active(at)


def decide_group(
    call: GroupCall, state: StateReader, group: Agreement | None, now: datetime, retention: float
) -> GroupDecision:
    """Count `call` in its group's month and fire each group cap it crossed, once. A month lives
    `retention` seconds of event time past its end: as long as a member's call of it can still count."""
    start, end = windows.month_window(call.time)
    key = MONTH_PREFIX + windows.month_key(call.time)
    calls, records = state.get(key) or (0, 0)
    month = MonthUsage(int(calls) + 1, int(records) + call.records)
    expires = end.timestamp() + retention + _MARGIN
    decision = GroupDecision(month, [Write(key, [month.calls, month.records], expires)])
    if not caps_apply(group, call.time):
        return decision
    assert group is not None  # noqa: S101 - caps_apply said so
    for breach in month_caps(month, (start, end), group.limits):
        if state.get(breach.marker) is None:
            decision.writes.append(Write(breach.marker, 1, expires))
            decision.alerts.append(group_alert(call, breach, now))
    return decision


def group_alert(call: GroupCall, breach: Breach, now: datetime) -> AlertRaised:
    """The group's alert: licensee and subject are the group, the metric is the breach's, the member's
    crossing call is the evidence."""
    return AlertRaised(
        licensee_id=call.group_id, rule=breach.rule, severity=breach.severity,
        window_start=breach.window[0], window_end=breach.window[1], detected_at=now,
        subject=call.group_id, metric=breach.subject, observed=breach.observed, limit=breach.limit,
        event_ids=(call.event_id,), app_id=call.app_id, org_id=call.org_id, org_type=call.org_type,
        event_time=call.time, member_id=call.member_id,
    )  # fmt: skip


def retention_seconds(max_age: float, max_lead: float) -> float:
    """How long past its end a group month must live: the processor counts calls up to `max_age` behind
    its clock, and no record moves the event-time high-water past the clock plus `max_lead`."""
    return max_age + max_lead
