"""Invoice assembly: ids, due dates, line order, currency and exact totals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.core.month import Month
from services.ledger.domain.invoice_math import NO_CURRENCY, PostedAdjustment, assemble, due_at, invoice_id
from services.ledger.domain.pricing import Line, MonthCharges
from services.ledger.errors import PricingError

OCT, SEP = Month(2026, 10), Month(2026, 9)


def test_an_invoice_id_is_the_same_every_time_for_a_licensee_and_month() -> None:
    assert invoice_id("omnisoft", OCT) == invoice_id("omnisoft", OCT) == "INV-omnisoft-2026-10"


@pytest.mark.parametrize(("month", "hours", "due"), [
    (OCT, 72, datetime(2026, 11, 4, tzinfo=UTC)),
    (OCT, 0, datetime(2026, 11, 1, tzinfo=UTC)),
    (Month(2026, 12), 24, datetime(2027, 1, 2, tzinfo=UTC)),
])  # fmt: skip
def test_a_month_is_due_for_invoicing_once_closed_plus_the_grace_period(
    month: Month, hours: int, due: datetime
) -> None:
    assert due_at(month, timedelta(hours=hours)) == due


def test_an_invoice_lists_its_own_charges_then_late_usage_by_month_then_posted_adjustments() -> None:
    charges = MonthCharges(
        OCT, "USD", (Line("fee", "fee", 15_000_000, "a", OCT), Line("usage", "u", 77_500, "a", OCT))
    )
    late = [Line("late_usage", "late", 63, "INV-x-2026-09", SEP, 1, 25),
            Line("late_usage", "late", 7, "INV-x-2026-08", Month(2026, 8), 1, 1)]  # fmt: skip
    credit = PostedAdjustment(41, -5_000, "USD", "goodwill credit", "INV-x-2026-09")
    draft = assemble("x", charges, late, [credit])
    assert [line.kind for line in draft.lines] == ["fee", "usage", "late_usage", "late_usage", "adjustment"]
    assert [str(line.usage_month) for line in draft.lines[2:4]] == ["2026-08", "2026-09"]
    assert draft.lines[-1].reference == "ledger:41"
    assert draft.total_minor == 15_000_000 + 77_500 + 63 + 7 - 5_000
    assert (draft.invoice_id, draft.currency) == ("INV-x-2026-10", "USD")


def test_an_invoice_without_any_agreement_takes_the_adjustments_currency_or_none() -> None:
    empty = MonthCharges(OCT, None, ())
    assert assemble("x", empty, [], []).currency == NO_CURRENCY
    assert assemble("x", empty, [], [PostedAdjustment(1, 10, "EUR", "r", "1")]).currency == "EUR"


def test_an_adjustment_in_another_currency_than_the_invoice_is_refused() -> None:
    charges = MonthCharges(OCT, "USD", (Line("fee", "fee", 1, "a", OCT),))
    with pytest.raises(PricingError):
        assemble("x", charges, [], [PostedAdjustment(1, 10, "EUR", "r", "1")])
