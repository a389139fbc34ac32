"""JSON and CSV bodies for the finance/audit API (pure)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

import orjson

from services.core.events import format_time

LEDGER_COLUMNS = (
    "entry_id",
    "licensee_id",
    "kind",
    "amount_minor",
    "currency",
    "reference",
    "reason",
    "invoice_id",
    "created_at",
)
INVOICE_COLUMNS = (
    "invoice_id",
    "line_no",
    "kind",
    "description",
    "usage_month",
    "calls",
    "records",
    "amount_minor",
    "currency",
    "reference",
)
REPORT_COLUMNS = (
    "section",
    "app_id",
    "month",
    "org_id",
    "registered",
    "use_case",
    "calls",
    "records",
    "first_seen",
    "last_seen",
    "calls_before_notice",
    "records_before_notice",
    "calls_after_notice",
    "records_after_notice",
    "notified_at",
    "notice_first",
    "government_use",
)
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def to_json(document: Any) -> bytes:
    """orjson: datetimes as RFC 3339, dates as YYYY-MM-DD."""
    return orjson.dumps(document, option=orjson.OPT_UTC_Z)


def cell(value: Any) -> str:
    """One CSV cell; text that a spreadsheet would run as a formula is quoted with a leading apostrophe."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, int | float):
        return str(value)
    text = str(value)
    return "'" + text if text.startswith(_FORMULA) else text


def to_csv(columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> str:
    """A CSV document with a header row; missing keys are empty cells."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([cell(row.get(column)) for column in columns])
    return out.getvalue()


def invoice_rows(invoice: Mapping[str, Any]) -> list[dict[str, Any]]:
    """An invoice's lines as CSV rows, closed by a `total` row."""
    rows = [
        {"invoice_id": invoice["invoice_id"], "currency": invoice["currency"], **line}
        for line in invoice["lines"]
    ]
    rows.append(
        {
            "invoice_id": invoice["invoice_id"],
            "kind": "total",
            "description": "total",
            "amount_minor": invoice["total_minor"],
            "currency": invoice["currency"],
        }
    )
    return rows


def report_rows(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The usage report's three lists as one CSV, each row tagged with its `section`."""
    sections = (
        ("app_month", "apps"),
        ("app_without_use_case", "apps_without_use_case"),
        ("government_org", "government"),
    )
    return [{"section": name, **row} for name, key in sections for row in report[key]]
