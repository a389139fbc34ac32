"""Reading the stored alerts of a licensee: for `GET /v1/licensees/{id}/alerts` and the audit report.

An alert belongs to a period when its window overlaps it (window_start < to and window_end > from): a
month's volume.breach is in the report of any part of that month, whenever it was detected.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

ALERT_CSV_COLUMNS = ("alert_id", "licensee_id", "rule", "severity", "metric", "subject", "window_start",
                     "window_end", "observed", "limit", "detected_at", "event_ids", "app_id", "org_id",
                     "org_type", "event_time", "kafka_partition", "kafka_offset")  # fmt: skip
_SELECT = """SELECT alert_id::text AS alert_id, licensee_id, rule, severity, metric, subject, window_start,
        window_end, observed, limit_value, detected_at, evidence_event_ids, evidence_app_id, evidence_org_id,
        evidence_org_type, evidence_event_time, event_source, kafka_topic, kafka_partition, kafka_offset,
        recorded_at, chain_seq
    FROM alerts WHERE licensee_id = %(licensee)s
      AND (%(to)s::timestamptz IS NULL OR window_start < %(to)s)
      AND (%(from)s::timestamptz IS NULL OR window_end > %(from)s)
    ORDER BY window_start, detected_at, rule, severity, subject, alert_id LIMIT %(limit)s"""


def alerts(
    conn: psycopg.Connection,
    licensee_id: str,
    start: datetime | None,
    end: datetime | None,
    limit: int = 10_000,
) -> dict[str, Any]:
    """The licensee's alerts whose window overlaps `[start, end)`, oldest window first, at most `limit`."""
    arguments = {"licensee": licensee_id, "from": start, "to": end, "limit": limit + 1}
    with conn.cursor(row_factory=dict_row) as cursor:
        rows = cursor.execute(_SELECT, arguments).fetchall()
    found = [shaped(row) for row in rows[:limit]]
    return {"licensee_id": licensee_id, "from": start, "to": end, "count": len(found),
            "truncated": len(rows) > limit, "alerts": found}  # fmt: skip


def shaped(row: dict[str, Any]) -> dict[str, Any]:
    """One stored alert as the API shows it: the message's field names, evidence nested."""
    return {
        "alert_id": row["alert_id"], "licensee_id": row["licensee_id"], "rule": row["rule"],
        "severity": row["severity"], "metric": row["metric"], "subject": row["subject"],
        "window_start": row["window_start"], "window_end": row["window_end"], "observed": row["observed"],
        "limit": row["limit_value"], "detected_at": row["detected_at"],
        "evidence": {"event_ids": list(row["evidence_event_ids"]), "app_id": row["evidence_app_id"],
                     "org_id": row["evidence_org_id"], "org_type": row["evidence_org_type"],
                     "event_time": row["evidence_event_time"]},
        "source": {"event_source": row["event_source"], "kafka_topic": row["kafka_topic"],
                   "kafka_partition": row["kafka_partition"], "kafka_offset": row["kafka_offset"],
                   "recorded_at": row["recorded_at"], "chain_seq": row["chain_seq"]},
    }  # fmt: skip


def csv_rows(found: dict[str, Any]) -> list[dict[str, Any]]:
    """Flat rows for CSV: evidence fields side by side, event ids joined by spaces."""
    out = []
    for alert in found["alerts"]:
        evidence, source = alert["evidence"], alert["source"]
        out.append({**{k: v for k, v in alert.items() if k not in ("evidence", "source")},
                    "event_ids": " ".join(evidence["event_ids"]), "app_id": evidence["app_id"],
                    "org_id": evidence["org_id"], "org_type": evidence["org_type"],
                    "event_time": evidence["event_time"], "kafka_partition": source["kafka_partition"],
                    "kafka_offset": source["kafka_offset"]})  # fmt: skip
    return out
