"""The audit report's "Unbilled exposure" section, rendered from exposure documents (pure)."""

from __future__ import annotations

from services.core.month import Month
from services.ledger.domain.audit_exposure import exposure_section
from services.ledger.domain.catalogue import default_catalogue
from services.ledger.domain.exposure import FROM_INVOICE, PRICED_NOW, Billed, assess, document
from services.ledger.domain.pricing import Usage

OCT, NOV = Month(2026, 10), Month(2026, 11)


def test_each_month_shows_tier_list_price_billed_and_the_gap_in_words() -> None:
    months = [
        document(assess("<b>x</b>", OCT, Usage(3_240, 81_000), default_catalogue(),
                        Billed(FROM_INVOICE, 15_077_500, "USD", ("INV-x-2026-10",)))),
        document(assess("<b>x</b>", NOV, Usage(300, 3_000), default_catalogue(),
                        Billed(PRICED_NOW, 10_000, "USD"))),
    ]  # fmt: skip
    html = exposure_section({"exposure": months})
    assert html.startswith("<h2>Unbilled exposure</h2>") and "tollgate-published-2026" in html
    for figure in ("Enterprise", "2,000 / 60,000", "1,240 / 21,000", "USD 587.00", "USD 167,253.66",
                   "USD 150,775.00", "INV-x-2026-10", "USD 16,478.66", "Basic",
                   "priced now (not invoiced yet)", "billed at or above list price"):  # fmt: skip
        assert figure in html, figure
    assert html.count('<p class="bad">') == 1  # only October has a gap
    assert "<b>" not in html and "&lt;b&gt;x&lt;/b&gt; used 3,240 calls" in html


def test_a_period_without_usage_or_invoices_says_so() -> None:
    assert "no usage or invoice in this period" in exposure_section({"exposure": []})
