"""Pure invoice assembly: number the lines, total them, and say which ledger entry each line becomes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.core.month import Month
from services.ledger.domain.pricing import PRICING_RULES, Line, MonthCharges
from services.ledger.errors import PricingError

NO_CURRENCY = "XXX"  # ISO 4217's "no currency": an invoice with no agreement at all to take one from

# Invoice line kind -> ledger entry kind. Posted adjustments are already in the ledger, so they add no entry.
LEDGER_KIND = {"fee": "invoice_line", "usage": "usage", "unagreed_usage": "usage", "late_usage": "adjustment"}


@dataclass(frozen=True, slots=True)
class PostedAdjustment:
    """An adjustment finance posted to the ledger that no invoice carries yet."""

    entry_id: int
    amount_minor: int
    currency: str
    reason: str
    reference: str


@dataclass(frozen=True, slots=True)
class Draft:
    """An invoice ready to be written: lines numbered from 1 and an exact total."""

    invoice_id: str
    licensee_id: str
    month: Month
    currency: str
    lines: tuple[Line, ...]
    pricing_rules: str = PRICING_RULES

    @property
    def total_minor(self) -> int:
        """The sum of the lines, in minor units."""
        return sum(line.amount_minor for line in self.lines)


def invoice_id(licensee_id: str, month: Month) -> str:
    """Deterministic, so issuing twice can only ever find the first invoice."""
    return f"INV-{licensee_id}-{month}"


def due_at(month: Month, grace: timedelta) -> datetime:
    """When a month's invoice may be issued: the month closed plus the grace period for late usage."""
    return month.end + grace


def assemble(
    licensee_id: str, charges: MonthCharges, late: Sequence[Line], adjustments: Sequence[PostedAdjustment]
) -> Draft:
    """The invoice of one month: its own charges, late usage of earlier months, then posted adjustments."""
    currency = charges.currency or next((a.currency for a in adjustments), None) or NO_CURRENCY
    foreign = [a for a in adjustments if a.currency != currency]
    if foreign and charges.currency is not None:
        raise PricingError(
            f"adjustment {foreign[0].entry_id} is in {foreign[0].currency}, the invoice in {currency}"
        )
    posted = [Line("adjustment", a.reason, a.amount_minor, f"ledger:{a.entry_id}") for a in adjustments]
    lines = (*charges.lines, *sorted(late, key=lambda line: str(line.usage_month)), *posted)
    return Draft(invoice_id(licensee_id, charges.month), licensee_id, charges.month, currency, lines)
