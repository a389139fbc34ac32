"""The audit report's pure parts: the government rule, the totals cross-check, escaping and charts."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

import pytest

from services.ledger.adapters.postgres.audit_data import cross_check, rule_kept
from services.ledger.domain.audit_html import money, table, text
from services.ledger.domain.audit_svg import bar_chart, label_width, label_x, timeline


@pytest.mark.parametrize(
    ("government_use", "before", "kept"),
    [("allowed", 5, True), ("notice_required", 0, True), ("notice_required", 1, False),
     ("prohibited", 0, False), (None, 0, False)],
)  # fmt: skip
def test_the_government_rule_is_kept_only_as_the_agreement_says(
    government_use: str | None, before: int, kept: bool
) -> None:
    assert rule_kept(government_use, {"calls_before_notice": before}) is kept


def test_the_cross_check_compares_each_months_metered_and_invoiced_usage() -> None:
    rows = [{"month": month, "calls": calls, "records": records} for month, calls, records in
            [("2026-09", 2, 20), ("2026-10", 1, 5), ("2026-10", 1, 5), ("2026-11", 7, 7)]]  # fmt: skip
    billed = {date(2026, 9, 1): (2, 20), date(2026, 10, 1): (2, 9)}
    assert [(c["month"], c["calls"], c["records"], c["status"]) for c in cross_check(rows, billed)] == [
        ("2026-09", 2, 20, "matches"), ("2026-10", 2, 10, "DIFFERS"),
        ("2026-11", 7, 7, "not invoiced yet")]  # fmt: skip


@pytest.mark.parametrize(
    ("minor", "currency", "shown"),
    [(15_077_500, "USD", "USD 150,775.00"), (-5, "EUR", "EUR -0.05"), (1_234, "JPY", "JPY 1,234")],
)
def test_money_is_shown_from_integer_minor_units(minor: int, currency: str, shown: str) -> None:
    assert money(minor, currency) == shown


def test_every_text_a_licensee_wrote_is_escaped_in_tables_and_charts() -> None:
    hostile = '<script>alert("x")</script>&'
    markup = table(["app"], [[hostile]]) + bar_chart("calls", [(hostile, 3)])
    assert "<script" not in markup
    assert markup.count("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;") == 2
    assert text(datetime(2026, 10, 1, tzinfo=UTC)) == "2026-10-01T00:00:00Z"


def test_a_timeline_marks_first_and_last_access_and_the_notice_in_time_order() -> None:
    svg = timeline(datetime(2026, 10, 2, tzinfo=UTC), datetime(2026, 10, 30, tzinfo=UTC),
                   datetime(2026, 9, 1, tzinfo=UTC))  # fmt: skip
    positions = [float(x) for x in re.findall(r'<circle cx="([0-9.]+)"', svg)]
    assert positions[2] < positions[0] < positions[1]  # notice, then first, then last access


@pytest.mark.parametrize(
    ("first", "last", "notice"),
    [(datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 10, 31, 23, 59, tzinfo=UTC), None),
     (datetime(2026, 10, 2, tzinfo=UTC), datetime(2026, 10, 30, tzinfo=UTC),
      datetime(2026, 9, 1, tzinfo=UTC)),
     (datetime(2026, 10, 5, tzinfo=UTC), datetime(2026, 10, 5, tzinfo=UTC),
      datetime(2026, 11, 1, tzinfo=UTC))],
)  # fmt: skip
def test_every_timeline_label_lies_inside_the_svg(
    first: datetime, last: datetime, notice: datetime | None
) -> None:
    svg = timeline(first, last, notice)
    width = float(re.search(r'<svg [^>]*width="([0-9.]+)"', svg).group(1))  # type: ignore[union-attr]
    labels = re.findall(r'<text x="([0-9.]+)" y="[0-9]+" text-anchor="middle">([^<]+)</text>', svg)
    assert len(labels) == 3 if notice else 2
    for x, label in labels:
        half = label_width(label) / 2
        assert float(x) - half >= 0 and float(x) + half <= width, (x, label)
    marks = [float(cx) for cx in re.findall(r'<circle cx="([0-9.]+)"', svg)]
    assert min(marks) == 20.0 and max(marks) == width - 20  # the marks stay at the times they show


def test_a_label_wider_than_its_mark_allows_moves_inward_and_only_then() -> None:
    label = "first access 2026-10-01T00:00"
    assert label_x(20.0, label) == pytest.approx(label_width(label) / 2 + 4)
    assert label_x(360.0, label) == 360.0
    assert label_x(700.0, label) == pytest.approx(720 - label_width(label) / 2 - 4)
