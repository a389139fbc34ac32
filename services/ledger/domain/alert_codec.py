"""Decode and check one alert Kafka record into a row for the `alerts` table (pure: no I/O).

Beyond the schema (`io.tollgate.alert.v1`) the ledger holds an alert to what its table and the audit report
rely on: the envelope `id` is the alert_id (the schema says so), the window is not empty, counts fit a bigint
and no text holds NUL (PostgreSQL text cannot). Anything else is Rejected with a reason naming the field.
"""

from __future__ import annotations

import uuid
from typing import Any

from services.core.events import parse_time
from services.core.schemas import ALERT_TYPE
from services.ledger.domain.codec import MAX_COUNT, checked_envelope, has_nul
from services.ledger.errors import Rejected

ALERT_COLUMNS = (
    "alert_id",
    "licensee_id",
    "rule",
    "severity",
    "metric",
    "subject",
    "window_start",
    "window_end",
    "observed",
    "limit_value",
    "evidence_event_ids",
    "evidence_app_id",
    "evidence_org_id",
    "evidence_org_type",
    "evidence_event_time",
    "detected_at",
    "event_source",
    "kafka_topic",
    "kafka_partition",
    "kafka_offset",
)
AlertRow = tuple[Any, ...]


def decode(value: bytes | None) -> dict[str, Any]:
    """The schema-valid alert envelope in a record's value; raise Rejected naming the problem."""
    envelope = checked_envelope(value, ALERT_TYPE)
    if has_nul(envelope):
        raise Rejected("data: strings must not contain NUL characters")
    return dict(envelope)


def to_row(envelope: dict[str, Any], topic: str, partition: int, offset: int) -> AlertRow:
    """The `alerts` row of a decoded alert, in `ALERT_COLUMNS` order, with its Kafka source."""
    data = envelope["data"]
    try:
        alert_id = uuid.UUID(data["alert_id"])
        window_start, window_end = parse_time(data["window_start"]), parse_time(data["window_end"])
        detected_at = parse_time(data["detected_at"])
        evidence = data["evidence"]
        event_time = parse_time(evidence["event_time"]) if evidence.get("event_time") else None
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise Rejected(f"data: {exc}") from exc
    if envelope["id"] != data["alert_id"] and _uuid_or_none(envelope["id"]) != alert_id:
        raise Rejected("id: must equal data.alert_id")
    if not window_start < window_end:
        raise Rejected("data.window_end: must be after window_start")
    for name in ("observed", "limit"):
        if data[name] is not None and data[name] > MAX_COUNT:
            raise Rejected(f"data.{name}: implausibly large")
    return (
        str(alert_id), data["licensee_id"], data["rule"], data["severity"], data.get("metric"),
        data.get("subject") or "", window_start, window_end, data["observed"], data["limit"],
        list(evidence["event_ids"]), evidence.get("app_id"), evidence.get("org_id"),
        evidence.get("org_type"), event_time, detected_at, envelope["source"], topic, partition, offset,
    )  # fmt: skip


def _uuid_or_none(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None
