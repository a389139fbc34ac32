"""The message model: CloudEvents 1.0 envelopes and the typed events Tollgate exchanges."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from services.core import ids
from services.core.schemas import ALERT_TYPE, API_CALL_TYPE, BILLABLE_TYPE

PROCESSOR_SOURCE = "tollgate/processor"


def parse_time(value: str) -> datetime:
    """Parse an RFC 3339 timestamp into an aware UTC datetime; raise ValueError otherwise."""
    text = value.strip()
    if not text.isascii():
        # RFC 3339 is ASCII; refusing here keeps fullwidth or Arabic-Indic digits out whatever Python reads.
        raise ValueError(f"timestamp {value!r} is not ASCII")
    if text.endswith(("z", "Z")):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        raise ValueError(f"timestamp {value!r} has no UTC offset")
    try:
        return parsed.astimezone(UTC)
    except OverflowError as exc:  # 9999-12-31T23:59:59-01:00 is in year 10000 in UTC
        raise ValueError(f"timestamp {value!r} is out of range in UTC") from exc


def format_time(moment: datetime) -> str:
    """Format an aware datetime as RFC 3339 in UTC with a `Z` suffix."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def dumps(document: Any) -> bytes:
    """Serialize a JSON document to bytes."""
    return orjson.dumps(document)


def loads(payload: bytes | str) -> Any:
    """Parse JSON bytes; raise ValueError on malformed input."""
    return orjson.loads(payload)


def cloudevent(
    event_type: str, event_id: str, source: str, time: datetime, data: dict[str, Any]
) -> dict[str, Any]:
    """Build a structured-mode CloudEvents 1.0 JSON envelope."""
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": source,
        "type": event_type,
        "time": format_time(time),
        "datacontenttype": "application/json",
        "data": data,
    }


@dataclass(frozen=True, slots=True)
class ApiCall:
    """One API call as a gateway saw it (`io.tollgate.api.call.v1`)."""

    event_id: str
    source: str
    time: datetime
    licensee_id: str
    app_id: str
    endpoint: str
    method: str
    status: int
    records: int
    bytes: int
    org_id: str
    org_type: str

    @property
    def key(self) -> str:
        """The dedupe identity: `source` + `id`."""
        return ids.event_key(self.source, self.event_id)

    @classmethod
    def from_cloudevent(cls, event: dict[str, Any]) -> ApiCall:
        """Build from a schema-valid envelope; raise ValueError/KeyError/TypeError on anything else."""
        data = event["data"]
        requester = data["requester"]
        return cls(
            event_id=event["id"], source=event["source"], time=parse_time(event["time"]),
            licensee_id=data["licensee_id"], app_id=data["app_id"], endpoint=data["endpoint"],
            method=data["method"], status=int(data["status"]), records=int(data["records"]),
            bytes=int(data["bytes"]), org_id=requester["org_id"], org_type=requester["org_type"],
        )

    def to_cloudevent(self) -> dict[str, Any]:
        """The envelope this call travels in."""
        data = {
            "licensee_id": self.licensee_id, "app_id": self.app_id, "endpoint": self.endpoint,
            "method": self.method, "status": self.status, "records": self.records, "bytes": self.bytes,
            "requester": {"org_id": self.org_id, "org_type": self.org_type},
        }
        return cloudevent(API_CALL_TYPE, self.event_id, self.source, self.time, data)


@dataclass(frozen=True, slots=True)
class AlertRaised:
    """A licensee broke a rule of its agreement (`io.tollgate.alert.v1`)."""

    licensee_id: str
    rule: str
    severity: str
    window_start: datetime
    window_end: datetime
    detected_at: datetime
    subject: str = ""
    metric: str | None = None
    observed: int | None = None
    limit: int | None = None
    event_ids: tuple[str, ...] = ()
    app_id: str | None = None
    org_id: str | None = None
    org_type: str | None = None
    event_time: datetime | None = None
    # volume.anomaly: the day's baseline, the factor it exceeded and its top apps ({app_id, calls, records}).
    baseline: float | None = None
    factor: float | None = None
    top_apps: tuple[dict[str, Any], ...] = ()
    # A licensee group's cap (subject = the group): the member whose call crossed it.
    member_id: str | None = None

    @property
    def alert_id(self) -> str:
        """Deterministic: a replay yields the same id, so the alert fires once."""
        # A metric other than the subject (a group's calls or records) joins the identity; every other
        # alert's subject is its metric or it has none, so their ids are unchanged.
        subject = self.subject
        if self.metric is not None and self.metric != subject:
            subject = f"{subject}\x1f{self.metric}"
        return ids.alert_id(self.rule, self.licensee_id, self.window_start, self.severity, subject)

    def to_cloudevent(self) -> dict[str, Any]:
        """The envelope this alert travels in."""
        evidence: dict[str, Any] = {
            "event_ids": list(self.event_ids[:20]), "app_id": self.app_id, "org_id": self.org_id,
            "org_type": self.org_type,
            "event_time": format_time(self.event_time) if self.event_time else None,
        }
        if self.baseline is not None:
            evidence.update(baseline=self.baseline, factor=self.factor, top_apps=list(self.top_apps))
        if self.member_id is not None:
            evidence["member_id"] = self.member_id
        data = {
            "alert_id": self.alert_id, "licensee_id": self.licensee_id, "rule": self.rule,
            "severity": self.severity, "metric": self.metric, "subject": self.subject,
            "window_start": format_time(self.window_start), "window_end": format_time(self.window_end),
            "observed": self.observed, "limit": self.limit, "evidence": evidence,
            "detected_at": format_time(self.detected_at),
        }
        return cloudevent(ALERT_TYPE, self.alert_id, PROCESSOR_SOURCE, self.detected_at, data)


@dataclass(frozen=True, slots=True)
class UsageRecorded:
    """A billable delta for one bucket of one hour or less (`io.tollgate.billable.v1`)."""

    usage_id: str
    licensee_id: str
    app_id: str
    period_start: datetime
    period_end: datetime
    calls: int
    records: int
    occurred_at: datetime | None = None
    org_id: str | None = None
    org_type: str | None = None
    source_event: tuple[str, str] | None = field(default=None)
    # An aggregated delta (the processor's): the span of event times and the input it covers, and for a
    # government org whether the org's notice was dated before its calls (the bucket splits on it).
    first_event_at: datetime | None = None
    last_event_at: datetime | None = None
    government_notified: bool | None = None
    reference: tuple[str, int, int, int] | None = None

    @classmethod
    def for_call(cls, call: ApiCall, period_start: datetime, period_end: datetime) -> UsageRecorded:
        """The billable delta of one counted call; its id depends only on the call's identity."""
        return cls(
            usage_id=ids.usage_id(call.source, call.event_id), licensee_id=call.licensee_id,
            app_id=call.app_id, period_start=period_start, period_end=period_end, calls=1,
            records=call.records, occurred_at=call.time, org_id=call.org_id, org_type=call.org_type,
            source_event=(call.source, call.event_id),
        )

    @classmethod
    def from_cloudevent(cls, event: dict[str, Any]) -> UsageRecorded:
        """Build from a schema-valid envelope."""
        data = event["data"]
        requester = data.get("requester") or {}
        source_event = data.get("source_event")
        occurred, first, last = data.get("occurred_at"), data.get("first_event_at"), data.get("last_event_at")
        ref = data.get("reference")
        return cls(
            usage_id=data["usage_id"], licensee_id=data["licensee_id"], app_id=data["app_id"],
            period_start=parse_time(data["period_start"]), period_end=parse_time(data["period_end"]),
            calls=int(data["calls"]), records=int(data["records"]),
            occurred_at=parse_time(occurred) if occurred else None,
            org_id=requester.get("org_id"), org_type=requester.get("org_type"),
            source_event=(source_event["source"], source_event["id"]) if source_event else None,
            first_event_at=parse_time(first) if first else None,
            last_event_at=parse_time(last) if last else None,
            government_notified=data.get("government_notified"),
            reference=(
                (ref["topic"], ref["partition"], ref["first_offset"], ref["last_offset"]) if ref else None
            ),
        )  # fmt: skip

    def to_cloudevent(self) -> dict[str, Any]:
        """The envelope this delta travels in."""
        data: dict[str, Any] = {
            "usage_id": self.usage_id, "licensee_id": self.licensee_id, "app_id": self.app_id,
            "period_start": format_time(self.period_start), "period_end": format_time(self.period_end),
            "calls": self.calls, "records": self.records,
        }
        if self.occurred_at is not None:
            data["occurred_at"] = format_time(self.occurred_at)
        if self.org_id is not None and self.org_type is not None:
            data["requester"] = {"org_id": self.org_id, "org_type": self.org_type}
        if self.source_event is not None:
            data["source_event"] = {"source": self.source_event[0], "id": self.source_event[1]}
        data.update(self._aggregate())
        stamp = self.occurred_at or self.period_start
        return cloudevent(BILLABLE_TYPE, self.usage_id, PROCESSOR_SOURCE, stamp, data)

    def _aggregate(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if self.first_event_at is not None:
            data["first_event_at"] = format_time(self.first_event_at)
        if self.last_event_at is not None:
            data["last_event_at"] = format_time(self.last_event_at)
        if self.government_notified is not None:
            data["government_notified"] = self.government_notified
        if self.reference is not None:
            topic, partition, first, last = self.reference
            data["reference"] = {
                "topic": topic, "partition": partition, "first_offset": first, "last_offset": last,
            }  # fmt: skip
        return data
