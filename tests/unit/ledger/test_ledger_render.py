"""CSV and JSON bodies of the finance/audit API."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime

import orjson
import pytest

from services.ledger.adapters.http import render


def parse(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


@pytest.mark.parametrize(("value", "text"), [
    (None, ""), (True, "true"), (False, "false"), (-5_000, "-5000"), (0, "0"),
    (datetime(2026, 10, 1, 12, tzinfo=UTC), "2026-10-01T12:00:00Z"), (date(2026, 10, 1), "2026-10-01"),
    ("plain", "plain"), ("=HYPERLINK(\"x\")", "'=HYPERLINK(\"x\")"), ("+1", "'+1"), ("-1", "'-1"),
        ("@SUM", "'@SUM"),
])  # fmt: skip
def test_a_csv_cell_renders_values_plainly_and_defuses_spreadsheet_formulas(value: object, text: str) -> None:
    assert render.cell(value) == text


def test_a_csv_document_has_a_header_and_quotes_commas_quotes_and_newlines() -> None:
    text = render.to_csv(("a", "b"), [{"a": 'x, "y"', "b": "line\nbreak"}, {"a": 1}])
    assert parse(text) == [["a", "b"], ['x, "y"', "line\nbreak"], ["1", ""]]
    assert text.endswith("\r\n")


def test_an_invoice_as_csv_lists_every_line_then_the_total() -> None:
    invoice = {"invoice_id": "INV-p-2026-10", "currency": "USD", "total_minor": 10_000, "lines": [
        {"line_no": 1, "kind": "fee", "description": "monthly fee", "usage_month": "2026-10", "calls": 0,
         "records": 0, "amount_minor": 10_000, "reference": "agreement:p"}]}  # fmt: skip
    rows = parse(render.to_csv(render.INVOICE_COLUMNS, render.invoice_rows(invoice)))
    assert rows[0] == list(render.INVOICE_COLUMNS)
    assert rows[1][:3] == ["INV-p-2026-10", "1", "fee"]
    assert dict(zip(rows[0], rows[2], strict=True))["amount_minor"] == "10000"
    assert rows[2][2] == "total"


def test_the_usage_report_as_csv_tags_each_row_with_its_section() -> None:
    report = {
        "apps": [{"app_id": "a", "month": "2026-10", "calls": 1, "records": 2}],
        "apps_without_use_case": [{"app_id": "b", "registered": False, "calls": 3, "records": 4}],
        "government": [
            {"org_id": "gov", "first_seen": datetime(2026, 10, 2, tzinfo=UTC), "notice_first": False}
        ],
    }
    rows = parse(render.to_csv(render.REPORT_COLUMNS, render.report_rows(report)))
    assert [row[0] for row in rows] == ["section", "app_month", "app_without_use_case", "government_org"]
    gov = dict(zip(rows[0], rows[3], strict=True))
    assert (gov["org_id"], gov["first_seen"], gov["notice_first"]) == ("gov", "2026-10-02T00:00:00Z", "false")


def test_json_times_are_rfc3339_in_utc() -> None:
    body = orjson.loads(render.to_json({"at": datetime(2026, 10, 1, tzinfo=UTC), "day": date(2026, 10, 1)}))
    assert body == {"at": "2026-10-01T00:00:00Z", "day": "2026-10-01"}
