"""Aggregated billable deltas: the fast and the full path store the same row, or refuse naming the field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from services.core.events import UsageRecorded
from services.ledger.domain.chain import fold, link_hash
from services.ledger.domain.codec import USAGE_COLUMNS, decode, to_row
from services.ledger.domain.fastpath import FastRows
from services.ledger.errors import Rejected

HOUR = datetime(2026, 10, 5, 13, tzinfo=UTC)
FAST = FastRows()


def delta(**changes: Any) -> UsageRecorded:
    """A processor-style delta: 40 calls of a notified government org in the 13:00 hour."""
    fields: dict[str, Any] = {
        "usage_id": "0b6c1f6e-5b1e-5d0a-9c4e-8f1a2b3c4d5e", "licensee_id": "acme", "app_id": "app-1",
        "period_start": HOUR, "period_end": HOUR + timedelta(hours=1), "calls": 40, "records": 900,
        "org_id": "gov-1", "org_type": "government", "first_event_at": HOUR + timedelta(minutes=2),
        "last_event_at": HOUR + timedelta(minutes=58, microseconds=1000), "government_notified": True,
        "reference": ("tollgate.api-calls.v1", 3, 1_000, 1_950),
    }  # fmt: skip
    return UsageRecorded(**{**fields, **changes})


def value(usage: UsageRecorded, **data: Any) -> bytes:
    """The envelope of `usage`, with `data` fields replaced (None removes one)."""
    event = usage.to_cloudevent()
    event["data"].update(data)
    event["data"] = {k: v for k, v in event["data"].items() if v is not None}
    return orjson.dumps(event)


def both_paths(raw: bytes) -> tuple[tuple[Any, ...] | None, tuple[Any, ...]]:
    """The fast path's row (None: not certain) and the full path's row."""
    return FAST.row(raw, "t.billable", 2, 77), to_row(decode(raw), "t.billable", 2, 77)


def columns(row: tuple[Any, ...]) -> dict[str, Any]:
    return dict(zip(USAGE_COLUMNS, row, strict=True))


def test_an_aggregated_delta_stores_its_event_span_notice_and_input_reference() -> None:
    fast, full = both_paths(value(delta()))
    assert fast == full
    row = columns(full)
    assert (row["calls"], row["records"], row["occurred_at"], row["source_event_id"]) == (40, 900, None, None)
    assert (row["first_event_at"], row["last_event_at"]) == (
        HOUR + timedelta(minutes=2),
        HOUR + timedelta(minutes=58, microseconds=1000),
    )
    assert row["government_notified"] is True
    assert (row["source_topic"], row["source_partition"], row["source_first_offset"],
            row["source_last_offset"]) == ("tollgate.api-calls.v1", 3, 1_000, 1_950)  # fmt: skip
    assert (row["kafka_topic"], row["kafka_partition"], row["kafka_offset"]) == ("t.billable", 2, 77)


@pytest.mark.parametrize("usage", [
    delta(government_notified=False),
    delta(org_id="c-1", org_type="commercial", government_notified=None),
    delta(org_id=None, org_type=None, government_notified=None),
    delta(calls=0, records=0),
    delta(first_event_at=HOUR, last_event_at=HOUR),
    delta(last_event_at=HOUR + timedelta(minutes=59, seconds=59, microseconds=999_999)),
    delta(first_event_at=None, last_event_at=None, reference=None),
    delta(reference=("t", 0, 0, 0)),
    delta(reference=("t" * 249, 2**31 - 1, 2**63 - 1, 2**63 - 1)),
    delta(occurred_at=HOUR + timedelta(minutes=7), source_event=("gw", "e-1"), first_event_at=None,
          last_event_at=None, reference=None, calls=1, records=3),
], ids=["after-notice-false", "commercial", "no-requester", "zero-counts", "one-instant", "last-microsecond",
        "no-span-no-reference", "offset-zero", "largest-offsets", "per-call"])  # fmt: skip
def test_a_valid_delta_takes_the_fast_path_with_the_full_paths_row(usage: UsageRecorded) -> None:
    fast, full = both_paths(value(usage))
    assert fast is not None and fast == full


REFERENCE = {"topic": "tollgate.api-calls.v1", "partition": 3, "first_offset": 10, "last_offset": 20}


@pytest.mark.parametrize(("data", "field"), [
    ({"first_event_at": "2026-10-05T12:59:59.999999Z"}, "data.first_event_at"),
    ({"first_event_at": "2026-10-05T14:00:00Z"}, "data.first_event_at"),
    ({"last_event_at": "2026-10-05T14:00:00Z"}, "data.last_event_at"),
    ({"first_event_at": "2026-10-05T13:30:00Z", "last_event_at": "2026-10-05T13:29:59Z"},
     "data.last_event_at: must not be before"),
    ({"first_event_at": "yesterday"}, "data.first_event_at"),
    ({"last_event_at": 1791205200}, "data.last_event_at"),
    ({"government_notified": "yes"}, "data.government_notified"),
    ({"government_notified": 1}, "data.government_notified"),
    ({"requester": {"org_id": "c-1", "org_type": "commercial"}}, "data.government_notified"),
    ({"requester": None}, "data.government_notified"),
    ({"reference": {**REFERENCE, "first_offset": 21}}, "data.reference.first_offset"),
    ({"reference": {**REFERENCE, "partition": -1}}, "data.reference.partition"),
    ({"reference": {**REFERENCE, "partition": 2**31}}, "data.reference.partition"),
    ({"reference": {**REFERENCE, "last_offset": 2**63}}, "data.reference.last_offset"),
    ({"reference": {**REFERENCE, "first_offset": 1.0}}, "data.reference.first_offset"),
    ({"reference": {**REFERENCE, "topic": ""}}, "data.reference.topic"),
    ({"reference": {**REFERENCE, "topic": "t" * 250}}, "data.reference.topic"),
    ({"reference": {"topic": "t", "partition": 0, "first_offset": 1}}, "data.reference"),
    ({"reference": {**REFERENCE, "extra": 1}}, "data.reference"),
    ({"reference": [REFERENCE]}, "data.reference"),
    ({"reference": {**REFERENCE, "topic": "in\u0000put"}}, "NUL"),
    ({"calls": -1}, "data.calls"),
])  # fmt: skip
def test_an_invalid_aggregated_delta_is_refused_naming_the_field_and_never_takes_the_fast_path(
    data: dict[str, Any], field: str
) -> None:
    raw = value(delta(), **data)  # {"requester": None}: a government flag left without its requester
    assert FAST.row(raw, "t.billable", 2, 77) is None
    with pytest.raises(Rejected) as caught:
        decode(raw)
    assert field in str(caught.value)


def test_null_for_the_government_flag_is_refused_as_the_schema_says() -> None:
    event = orjson.loads(value(delta()))
    event["data"]["government_notified"] = None
    raw = orjson.dumps(event)
    assert FAST.row(raw, "t", 0, 0) is None
    with pytest.raises(Rejected) as caught:
        decode(raw)
    assert "data.government_notified" in str(caught.value)


@pytest.mark.parametrize(("content", "folded"), [
    ("(a,b,prev,)", "(a,b,prev,)"),
    ("(a,b,prev,,,,,,,,)", "(a,b,prev,)"),
    ("(a,b,prev,,2026-10-05 13:02:00+00,,t,3,10,20)", "(a,b,prev,,2026-10-05 13:02:00+00,,t,3,10,20)"),
    ('(a,b,prev,,"x,",,)', '(a,b,prev,,"x,",)'),
    ("(a,b,prev,,t,)", "(a,b,prev,,t,)"),
])  # fmt: skip
def test_trailing_null_fields_fold_into_one_so_an_added_column_keeps_old_links(
    content: str, folded: str
) -> None:
    assert fold(content) == folded
    assert link_hash("usage_entries", content) == link_hash("usage_entries", folded)
