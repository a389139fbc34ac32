"""Decode and check one billable Kafka record into a row for `usage_entries` (pure: no I/O).

Two kinds of delta arrive: a per-call delta (`occurred_at`, `source_event`) and the processor's aggregated
delta (`first_event_at`, `last_event_at`, `government_notified` for a government org, and the input
`reference` it covers). Beyond the schema, `check` holds each delta to what the reports rely on: a bucket
of one hour or less, event times inside it, first before last, and columns PostgreSQL can hold.
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import timedelta
from typing import Any

import orjson

from services.core.events import UsageRecorded
from services.core.schemas import BILLABLE_TYPE, problems
from services.ledger.errors import Rejected

MAX_BUCKET = timedelta(hours=1)
# bigint holds 2**63-1; anything near that is a bug upstream, and would overflow monthly sums.
MAX_COUNT = 2**40
MAX_PARTITION = 2**31 - 1  # integer column
MAX_OFFSET = 2**63 - 1  # bigint column

USAGE_COLUMNS = (
    "usage_id",
    "licensee_id",
    "app_id",
    "period_start",
    "period_end",
    "occurred_at",
    "calls",
    "records",
    "org_id",
    "org_type",
    "source_event_source",
    "source_event_id",
    "kafka_topic",
    "kafka_partition",
    "kafka_offset",
    # migration 0006: aggregated deltas (NULL on a per-call delta)
    "first_event_at",
    "last_event_at",
    "government_notified",
    "source_topic",
    "source_partition",
    "source_first_offset",
    "source_last_offset",
)
USAGE_TYPES = ("text", "text", "text", "timestamptz", "timestamptz", "timestamptz", "int8", "int8",
               "text", "text", "text", "text", "text", "int4", "int8",
               "timestamptz", "timestamptz", "bool", "text", "int4", "int8", "int8")  # fmt: skip
UsageRow = tuple[Any, ...]


def decode(value: bytes | None) -> UsageRecorded:
    """The billable delta in a record's value; raise Rejected with a reason naming the problem."""
    envelope = checked_envelope(value, BILLABLE_TYPE)
    try:
        usage = UsageRecorded.from_cloudevent(envelope)
        canonical = str(uuid.UUID(usage.usage_id))
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        # OverflowError: a date-time near year 1 or 9999 whose UTC form falls outside datetime's range.
        raise Rejected(f"data: {exc}") from exc
    check(usage)
    # PostgreSQL text cannot hold NUL; refusing it here keeps one bad record from stalling a whole batch.
    if value and b"\\u0000" in value and has_nul(envelope):
        raise Rejected("data: strings must not contain NUL characters")
    return usage if canonical == usage.usage_id else dataclasses.replace(usage, usage_id=canonical)


def checked_envelope(value: bytes | None, event_type: str) -> Any:
    """A record's value parsed and valid against `event_type`'s schema; Rejected names the first problems."""
    if value is None:
        raise Rejected("record has no value")
    try:
        envelope = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise Rejected(f"not JSON: {exc}") from exc
    found = problems(event_type, envelope)
    if found:
        raise Rejected("; ".join(f"{p['field']}: {p['reason']}" for p in found[:5]))
    return envelope


def check(usage: UsageRecorded) -> None:
    """Refuse, naming the field, a schema-valid delta the ledger cannot store or report exactly."""
    try:
        bucket = usage.period_start < usage.period_end <= usage.period_start + MAX_BUCKET
    except OverflowError:  # period_start within an hour of datetime.max
        bucket = False
    if not bucket:
        raise Rejected("data.period_end: must be after period_start, by at most one hour")
    if usage.calls > MAX_COUNT or usage.records > MAX_COUNT:
        raise Rejected("data.calls/records: implausibly large")
    _check_span(usage)
    if usage.government_notified is not None and usage.org_type != "government":
        raise Rejected("data.government_notified: only for a government requester (requester.org_type)")
    if usage.reference is not None:
        _check_reference(usage.reference)


def _check_span(usage: UsageRecorded) -> None:
    """Event times of an aggregated delta lie in its bucket, the first not after the last."""
    for name in ("first_event_at", "last_event_at"):
        at = getattr(usage, name)
        if at is not None and not usage.period_start <= at < usage.period_end:
            raise Rejected(f"data.{name}: must lie in [period_start, period_end)")
    first, last = usage.first_event_at, usage.last_event_at
    if first is not None and last is not None and first > last:
        raise Rejected("data.last_event_at: must not be before first_event_at")


def _check_reference(reference: tuple[str, int, int, int]) -> None:
    _, partition, first, last = reference
    if partition > MAX_PARTITION:
        raise Rejected(f"data.reference.partition: must be at most {MAX_PARTITION}")
    if last > MAX_OFFSET:
        raise Rejected(f"data.reference.last_offset: must be at most {MAX_OFFSET}")
    if first > last:
        raise Rejected("data.reference.first_offset: must not exceed last_offset")


def has_nul(document: Any) -> bool:
    """Whether any string (key or value) in the JSON `document` holds a NUL character."""
    if isinstance(document, str):
        return "\x00" in document
    if isinstance(document, dict):
        return any(has_nul(k) or has_nul(v) for k, v in document.items())
    if isinstance(document, list):
        return any(has_nul(v) for v in document)
    return False


def to_row(usage: UsageRecorded, topic: str, partition: int, offset: int) -> UsageRow:
    """The `usage_entries` row of a delta, in `USAGE_COLUMNS` order, with its Kafka source."""
    source, event_id = usage.source_event or (None, None)
    reference = usage.reference or (None, None, None, None)
    return (
        usage.usage_id,
        usage.licensee_id,
        usage.app_id,
        usage.period_start,
        usage.period_end,
        usage.occurred_at,
        usage.calls,
        usage.records,
        usage.org_id,
        usage.org_type,
        source,
        event_id,
        topic,
        partition,
        offset,
        usage.first_event_at,
        usage.last_event_at,
        usage.government_notified,
        *reference,
    )
