"""The ledger's alert parts without I/O: decoding alert records, their rows, the report section, CSV rows."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from services.core.events import AlertRaised, dumps
from services.core.topics import ALERTS
from services.ledger.adapters.kafka.alert_consumer import INSERT_ALERTS, alert_settings
from services.ledger.adapters.postgres.alerts_store import ALERT_CSV_COLUMNS, csv_rows, shaped
from services.ledger.domain.alert_codec import ALERT_COLUMNS, decode, to_row
from services.ledger.domain.audit_sections import alerts_raised
from services.ledger.errors import Rejected
from services.ledger.settings import LedgerSettings

OCT = datetime(2026, 10, 1, tzinfo=UTC)
NOV = datetime(2026, 11, 1, tzinfo=UTC)
ALERT = AlertRaised(
    licensee_id="omnisoft", rule="government.unnotified", severity="critical", window_start=OCT,
    window_end=NOV, detected_at=datetime(2026, 10, 3, 4, 5, tzinfo=UTC), subject="gov-intel-agency",
    event_ids=("omnisoft-003190",), app_id="omni-cloud", org_id="gov-intel-agency", org_type="government",
    event_time=datetime(2026, 10, 3, 4, 0, tzinfo=UTC),
)  # fmt: skip


def envelope(**data: Any) -> dict[str, Any]:
    """The alert's CloudEvent with `data` fields replaced."""
    event = ALERT.to_cloudevent()
    event["data"] = {**event["data"], **data}
    return event


def test_a_valid_alert_becomes_one_row_with_its_evidence_and_kafka_source() -> None:
    row = dict(zip(ALERT_COLUMNS, to_row(decode(dumps(ALERT.to_cloudevent())), ALERTS, 2, 41), strict=True))
    assert row["alert_id"] == ALERT.alert_id and row["rule"] == "government.unnotified"
    assert (row["window_start"], row["window_end"]) == (OCT, NOV)
    assert (row["observed"], row["limit_value"]) == (None, None)
    assert row["evidence_event_ids"] == ["omnisoft-003190"] and row["evidence_org_type"] == "government"
    assert (row["kafka_topic"], row["kafka_partition"], row["kafka_offset"]) == (ALERTS, 2, 41)
    assert row["event_source"] == "tollgate/processor"


@pytest.mark.parametrize(
    ("value", "reason"),
    [(None, "no value"), (b"{not json", "not JSON"),
     (dumps(envelope(severity="fatal")), "severity"),
     (dumps(envelope(rule="volume.nope")), "rule"),
     (dumps({**ALERT.to_cloudevent(), "id": "another"}), "id: must equal data.alert_id"),
     (dumps(envelope(window_end="2026-10-01T00:00:00Z")), "window_end: must be after window_start"),
     (dumps(envelope(observed=2**41, limit=1)), "observed: implausibly large"),
     (dumps(envelope(subject="gov\x00")), "NUL")],
)  # fmt: skip
def test_a_bad_alert_record_is_rejected_naming_the_problem(value: bytes | None, reason: str) -> None:
    with pytest.raises(Rejected, match=reason):
        to_row(decode(value), ALERTS, 0, 0)


def test_the_consumer_reads_every_partition_of_the_alerts_topic_and_may_have_no_dlq_topic() -> None:
    from pathlib import Path

    base = LedgerSettings("k:9092", "postgresql://x/y", Path("/t"), partitions=(0, 1))
    turned = alert_settings(base)
    assert (turned.topic, turned.dlq_topic, turned.partitions) == (ALERTS, "", None)
    assert "ON CONFLICT" not in INSERT_ALERTS and "NOT EXISTS" in INSERT_ALERTS


def stored(**overrides: Any) -> dict[str, Any]:
    """A row as alerts_store reads it back."""
    row = dict(zip(ALERT_COLUMNS, to_row(ALERT.to_cloudevent(), ALERTS, 0, 7), strict=True))
    return {**row, "recorded_at": NOV, "chain_seq": 1, **overrides}


def test_the_report_section_lists_each_alert_with_its_evidence_escaped() -> None:
    hostile = stored(evidence_app_id="<img src=x onerror=alert(1)>")
    html = alerts_raised({"alerts": [shaped(hostile)], "alerts_truncated": False})
    for shown in ("government.unnotified", "critical", "omnisoft-003190", "gov-intel-agency (government)",
                  "2026-10-01T00:00:00Z to 2026-11-01T00:00:00Z",
                  "1 alerts (government.unnotified: 1)."):  # fmt: skip
        assert shown in html, shown
    assert "<img" not in html and "&lt;img src=x" in html
    assert "No alert was raised" in alerts_raised({"alerts": [], "alerts_truncated": False})


def test_csv_rows_flatten_the_evidence() -> None:
    rows = csv_rows({"alerts": [shaped(stored(evidence_event_ids=["a", "b"]))]})
    assert set(rows[0]) <= set(ALERT_CSV_COLUMNS)
    assert (rows[0]["event_ids"], rows[0]["org_id"]) == ("a b", "gov-intel-agency")
    assert rows[0]["kafka_offset"] == 7
    assert orjson.loads(orjson.dumps(rows[0]["limit"])) is None
