"""Unbilled exposure (pure): a month's usage at list price against what the licensee's agreement billed.

Rules (tests/unit/ledger/test_ledger_exposure.py states each as a table):
- A tier covers a month's usage when, for calls and for records, the usage is within its included volume
  or the tier sells overage of that kind. A tier with no included volume of a kind has no limit on it.
- Its price: `monthly_fee_minor` plus the month's share of `annual_fee_minor` (a twelfth, the remainder in
  December, as agreements are priced), plus `ceil(excess * overage_per_1000 / 1000)` for calls and records.
- The list price is that of the cheapest covering tier; on a tie, the first in the catalogue. A month with
  no usage is priced 0 (nothing to list).
- Difference = list price - billed. Positive is unbilled exposure; zero or negative means the agreement
  billed at least the list price. It is left out when the two are in different currencies (a non-zero
  amount billed in another currency) or no tier covers the usage.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from services.core.month import Month
from services.ledger.domain.audit_html import money
from services.ledger.domain.catalogue import Catalogue, Tier
from services.ledger.domain.pricing import Usage, annual_share, overage_minor

UNBILLED = "unbilled exposure"
COVERED = "billed at or above list price"
NO_TIER = "no published tier covers this usage"
NOT_COMPARABLE = "billed in another currency than the catalogue's"
FROM_INVOICE = "invoice"
PRICED_NOW = "priced usage"


@dataclass(frozen=True, slots=True)
class Quote:
    """One tier's price for one month's usage, in the catalogue's minor units."""

    tier: Tier
    fee_minor: int
    over_calls: int
    over_records: int
    calls_overage_minor: int
    records_overage_minor: int

    @property
    def total_minor(self) -> int:
        """Fee plus both overages."""
        return self.fee_minor + self.calls_overage_minor + self.records_overage_minor


@dataclass(frozen=True, slots=True)
class Billed:
    """What the agreement billed for the month: from the ledger's invoices, or priced now if none yet."""

    source: str
    amount_minor: int
    currency: str | None
    invoice_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Exposure:
    """A month's usage, its list price, what was billed, and the difference."""

    licensee_id: str
    month: Month
    usage: Usage
    catalogue: Catalogue
    quote: Quote | None
    billed: Billed

    @property
    def list_minor(self) -> int | None:
        """The list price: 0 without usage, None when no tier covers the usage."""
        if not (self.usage.calls or self.usage.records):
            return 0
        return self.quote.total_minor if self.quote else None

    @property
    def comparable(self) -> bool:
        """Whether billed and list price are in one currency (nothing billed compares with anything)."""
        return self.billed.amount_minor == 0 or self.billed.currency in (None, self.catalogue.currency)

    @property
    def difference_minor(self) -> int | None:
        """List price minus billed; None when they cannot be compared."""
        if self.list_minor is None or not self.comparable:
            return None
        return self.list_minor - self.billed.amount_minor

    @property
    def status(self) -> str:
        """One of UNBILLED, COVERED, NO_TIER, NOT_COMPARABLE."""
        if self.list_minor is None:
            return NO_TIER
        if self.difference_minor is None:
            return NOT_COMPARABLE
        return UNBILLED if self.difference_minor > 0 else COVERED


def quote(tier: Tier, usage: Usage, month: Month) -> Quote | None:
    """The tier's price for the month's usage, or None when the tier does not cover it."""
    over_calls = _excess(usage.calls, tier.included_calls)
    over_records = _excess(usage.records, tier.included_records)
    calls_price, records_price = tier.overage_per_1000_calls_minor, tier.overage_per_1000_records_minor
    if (over_calls and calls_price is None) or (over_records and records_price is None):
        return None
    fee = tier.monthly_fee_minor + annual_share(tier.annual_fee_minor, month.month)
    return Quote(tier, fee, over_calls, over_records,
                 overage_minor(over_calls, 0, calls_price or 0),
                 overage_minor(over_records, 0, records_price or 0))  # fmt: skip


def cheapest(catalogue: Catalogue, usage: Usage, month: Month) -> Quote | None:
    """The cheapest tier that covers the usage (the first listed on a tie), or None if none does."""
    quotes = [found for tier in catalogue.tiers if (found := quote(tier, usage, month)) is not None]
    return min(quotes, key=lambda q: q.total_minor, default=None)


def assess(licensee_id: str, month: Month, usage: Usage, catalogue: Catalogue, billed: Billed) -> Exposure:
    """The month's exposure: usage priced on the cheapest covering tier, against what was billed."""
    found = cheapest(catalogue, usage, month) if (usage.calls or usage.records) else None
    return Exposure(licensee_id, month, usage, catalogue, found, billed)


def _excess(used: int, included: int | None) -> int:
    return 0 if included is None else max(0, used - included)


def document(exposure: Exposure) -> dict[str, Any]:
    """The exposure as the API and the audit report's JSON facts give it."""
    billed = exposure.billed
    difference = exposure.difference_minor
    return {
        "licensee_id": exposure.licensee_id, "month": str(exposure.month),
        "catalogue_id": exposure.catalogue.catalogue_id, "currency": exposure.catalogue.currency,
        "usage": {"calls": exposure.usage.calls, "records": exposure.usage.records},
        "list_price": _quote_document(exposure.quote), "list_minor": exposure.list_minor,
        "billed": {"source": billed.source, "amount_minor": billed.amount_minor, "currency": billed.currency,
                   "invoice_ids": list(billed.invoice_ids)},
        "difference_minor": difference,
        "unbilled_minor": None if difference is None else max(0, difference),
        "status": exposure.status, "summary": summary(exposure),
    }  # fmt: skip


def _quote_document(found: Quote | None) -> dict[str, Any] | None:
    if found is None:
        return None
    tier = found.tier
    return {
        "tier_id": tier.tier_id, "tier": tier.name, "fee_minor": found.fee_minor,
        "included_calls": tier.included_calls, "included_records": tier.included_records,
        "over_calls": found.over_calls, "over_records": found.over_records,
        "overage_per_1000_calls_minor": tier.overage_per_1000_calls_minor,
        "overage_per_1000_records_minor": tier.overage_per_1000_records_minor,
        "calls_overage_minor": found.calls_overage_minor,
        "records_overage_minor": found.records_overage_minor,
        "total_minor": found.total_minor,
    }  # fmt: skip


def summary(exposure: Exposure) -> str:
    """The exposure in one paragraph a person reads: usage, list price, billed, and the gap."""
    usage, currency = exposure.usage, exposure.catalogue.currency
    text = f"{exposure.licensee_id} used {usage.calls:,} calls and {usage.records:,} records in "
    text += f"{exposure.month}. {_list_sentence(exposure)} {_billed_sentence(exposure.billed, currency)} "
    difference = exposure.difference_minor
    if difference is None:
        return text + f"Not compared: {exposure.status}."
    if difference > 0:
        return text + f"Unbilled exposure: {money(difference, currency)}."
    if difference == 0:
        return text + "No unbilled exposure: billed exactly the list price."
    return text + f"No unbilled exposure: billed {money(-difference, currency)} above list price."


def _list_sentence(exposure: Exposure) -> str:
    found, currency = exposure.quote, exposure.catalogue.currency
    if found is None:
        return "Nothing to price at list price." if exposure.list_minor == 0 else f"List price: {NO_TIER}."
    tier = found.tier
    calls, records = volume_text(tier.included_calls), volume_text(tier.included_records)
    included = f"{calls} calls and {records} records included"
    over = f"{found.over_calls:,} calls and {found.over_records:,} records over"
    overage = money(found.calls_overage_minor + found.records_overage_minor, currency)
    return (f"At list price that is {money(found.total_minor, currency)} on {tier.name} "
            f"({money(found.fee_minor, currency)} fee, {included}, {over}: {overage} overage).")  # fmt: skip


def _billed_sentence(billed: Billed, currency: str) -> str:
    shown_in = billed.currency if billed.amount_minor and billed.currency else currency
    amount = money(billed.amount_minor, shown_in)
    if billed.source == FROM_INVOICE:
        return f"Billed: {amount} (invoice {', '.join(billed.invoice_ids)})."
    return f"Not invoiced yet: the agreement prices this usage at {amount}."


def volume_text(value: int | None) -> str:
    """An included volume as text: `unlimited` when the tier sets none."""
    return "unlimited" if value is None else f"{value:,}"
