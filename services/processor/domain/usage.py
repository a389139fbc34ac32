"""Billable usage, aggregated: one open bucket per licensee, UTC hour, app, requester org and notice.

Pure. A counted call adds itself to its bucket (key `b:<bucket id>` of the licensee's state; the list of
the licensee's open bucket ids is key `u`, written only when a bucket opens, so a call writes one small
value); the edge flushes a licensee's open buckets as billable deltas every `flush` seconds of its clock
(README "Billable usage"), so the ledger stores rows that grow with buckets, not with calls. The deltas
leave in the same Kafka transaction as the state that forgets them, so each counted call is billed
exactly once. A delta's `usage_id` is derived from its licensee, bucket and the input position of its
first call, so it is the same whoever computes it from the same input.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from services.core.agreements import Agreement
from services.core.events import ApiCall, UsageRecorded, parse_time
from services.processor.domain import windows

OPEN_KEY = "u"
BUCKET_PREFIX = "b:"
_NAMESPACE = uuid.UUID("5b0d7c3e-8f1a-4c52-9a57-2f1c0e6d4b21")
_HOUR_S = 3600
# An open bucket: [calls, records, first event ms, last event ms, first position, last position].
Held = list[int]
OpenBuckets = Mapping[str, Held]


def notified(call: ApiCall, agreement: Agreement | None) -> bool | None:
    """For a government call: whether the agreement in force held a notice for its org dated before it."""
    if call.org_type != "government":
        return None
    if agreement is None or call.org_id is None:
        return False
    first = agreement.first_notice(call.org_id)
    return first is not None and first < call.time


def bucket_id(call: ApiCall, agreement: Agreement | None, at: float | None = None) -> str:
    """The bucket a call (at `at`, its event time in epoch seconds, if known) is billed in: hour
    start, app, org, org type and notice (`|`-joined)."""
    hour = int(windows.epoch(call.time) if at is None else at) // _HOUR_S * _HOUR_S
    flag = notified(call, agreement)
    notice = "" if flag is None else ("1" if flag else "0")
    return f"{hour}|{call.app_id}|{call.org_id or ''}|{call.org_type or ''}|{notice}"


def add(held: Held | None, call: ApiCall, position: int, event_time: float | None = None) -> Held:
    """The bucket `held` with `call` (read at input `position`; `event_time` in epoch seconds, if
    known) added; `held` is left as it was."""
    at = int((windows.epoch(call.time) if event_time is None else event_time) * 1000)
    if held is None:
        return [1, call.records, at, at, position, position]
    calls, records, first, last, first_position, _ = held
    return [calls + 1, records + call.records, min(first, at), max(last, at), first_position, position]


def deltas(licensee_id: str, buckets: OpenBuckets, topic: str, partition: int) -> list[UsageRecorded]:
    """The billable deltas that close `buckets` of a licensee read from `topic`/`partition`."""
    out = []
    for key in sorted(buckets):
        calls, records, first, last, first_position, last_position = buckets[key]
        hour, app_id, org_id, org_type, notice = key.split("|")
        start = datetime.fromtimestamp(int(hour), UTC)
        end = datetime.fromtimestamp(int(hour) + _HOUR_S, UTC)
        identity = f"{licensee_id}|{key}|{topic}|{partition}|{first_position}"
        out.append(
            UsageRecorded(
                usage_id=str(uuid.uuid5(_NAMESPACE, identity)), licensee_id=licensee_id, app_id=app_id,
                period_start=start, period_end=end, calls=calls, records=records,
                org_id=org_id or None, org_type=org_type or None,
                first_event_at=datetime.fromtimestamp(first / 1000, UTC),
                last_event_at=datetime.fromtimestamp(last / 1000, UTC),
                government_notified=None if notice == "" else notice == "1",
                reference=(topic, partition, first_position, last_position),
            )
        )  # fmt: skip
    return out


def bucket_of(data: Mapping[str, Any]) -> str:
    """The bucket id of a billable delta's `data` (the inverse of `deltas`, for comparing runs)."""
    hour = int(parse_time(data["period_start"]).timestamp())
    requester = data.get("requester") or {}
    flag = data.get("government_notified")
    notice = "" if flag is None else ("1" if flag else "0")
    return f"{hour}|{data['app_id']}|{requester.get('org_id', '')}|{requester.get('org_type', '')}|{notice}"
