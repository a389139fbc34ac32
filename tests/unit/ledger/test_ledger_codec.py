"""Billable records: valid ones become usage rows, anything else is rejected with a reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from services.core.events import ApiCall, UsageRecorded
from services.ledger.domain.codec import USAGE_COLUMNS, USAGE_TYPES, decode, to_row
from services.ledger.errors import Rejected

HOUR = datetime(2026, 10, 5, 13, tzinfo=UTC)


def billable() -> UsageRecorded:
    call = ApiCall("e-1", "gw", HOUR + timedelta(minutes=7), "acme", "app", "/x", "GET", 200, 25, 900,
        "gov-1",
                   "government")  # fmt: skip
    return UsageRecorded.for_call(call, HOUR, HOUR + timedelta(hours=1))


def envelope(**data: Any) -> bytes:
    event = billable().to_cloudevent()
    event["data"].update(data)
    return orjson.dumps(event)


def test_a_billable_event_decodes_to_a_row_with_its_kafka_origin() -> None:
    usage = billable()
    row = dict(
        zip(USAGE_COLUMNS, to_row(decode(orjson.dumps(usage.to_cloudevent())), "t", 3, 42), strict=True)
    )
    assert row["usage_id"] == usage.usage_id
    assert (row["calls"], row["records"], row["org_type"]) == (1, 25, "government")
    assert (row["source_event_source"], row["source_event_id"]) == ("gw", "e-1")
    assert (row["kafka_topic"], row["kafka_partition"], row["kafka_offset"]) == ("t", 3, 42)
    assert len(USAGE_TYPES) == len(USAGE_COLUMNS)


def test_an_upper_case_usage_id_is_stored_in_canonical_form_so_it_dedupes() -> None:
    usage = billable()
    assert decode(envelope(usage_id=usage.usage_id.upper())).usage_id == usage.usage_id


@pytest.mark.parametrize(("value", "reason"), [
    (None, "no value"),
    (b"{not json", "not JSON"),
    (b"[]", "(event)"),
    (orjson.dumps({**billable().to_cloudevent(), "type": "io.tollgate.api.call.v1"}), "type"),
    (envelope(calls=-1), "data.calls"),
    (envelope(records="many"), "data.records"),
    (envelope(usage_id="not-a-uuid"), "data"),
    (envelope(period_end=(HOUR - timedelta(minutes=1)).isoformat()), "period_end"),
    (envelope(period_end=(HOUR + timedelta(hours=2)).isoformat()), "period_end"),
    (envelope(calls=2**50), "implausibly large"),
    (envelope(app_id="app\u0000x"), "data.app_id"),
    (envelope(source_event={"source": "gw\u0000", "id": "1"}), "NUL"),
    (envelope(extra=1), "data"),
    # Near datetime's limits: once an OverflowError that escaped decode and stopped the consumer.
    (envelope(period_start="9999-12-31T23:30:00Z", period_end="9999-12-31T23:45:00Z"), "period_end"),
    (envelope(period_start="0001-01-01T00:00:00+01:00"), "out of range"),
])  # fmt: skip
def test_a_record_that_cannot_be_billed_is_rejected_with_a_reason(value: bytes | None, reason: str) -> None:
    with pytest.raises(Rejected, match=None) as caught:
        decode(value)
    assert reason in str(caught.value)
