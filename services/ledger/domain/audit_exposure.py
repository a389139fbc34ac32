"""The audit report's "Unbilled exposure" section: each month's usage at list price against its billing."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

from services.ledger.domain.audit_html import money, table, verdict
from services.ledger.domain.exposure import COVERED, UNBILLED, volume_text

HEADERS = ["month", "calls", "records", "cheapest covering tier", "included (calls / records)",
           "over (calls / records)", "overage", "list price", "billed", "billed from", "difference",
           "status"]  # fmt: skip
NOTE = (
    "What each whole calendar month of the period would cost on the cheapest published tier that covers its "
    "usage (price catalogue {catalogue}), against what the agreement billed for it: the fee, usage and "
    "late-usage lines of the ledger's invoices for that month, or, before its invoice is issued, its usage "
    "priced now under the agreement. Posted adjustments are not counted. Difference = list price - billed; "
    "a positive difference is usage the platform did not bill at its published prices."
)


def exposure_section(facts: Mapping[str, Any]) -> str:
    """The section: the note, one row per month with usage or an invoice, and each gap in words."""
    months = facts.get("exposure") or []
    catalogue = months[0]["catalogue_id"] if months else "of the ledger"
    rows = [_row(m) for m in months]
    gaps = [f'<p class="bad">{escape(m["summary"])}</p>' for m in months if m["status"] == UNBILLED]
    return (f"<h2>Unbilled exposure</h2><p>{escape(NOTE.format(catalogue=catalogue))}</p>"
            + table(HEADERS, rows, "no usage or invoice in this period") + "".join(gaps))  # fmt: skip


def _row(month: Mapping[str, Any]) -> list[Any]:
    currency, tier, billed = month["currency"], month["list_price"], month["billed"]
    difference = month["difference_minor"]
    return [
        month["month"], month["usage"]["calls"], month["usage"]["records"],
        tier["tier"] if tier else "-",
        f"{volume_text(tier['included_calls'])} / {volume_text(tier['included_records'])}" if tier else "-",
        f"{tier['over_calls']:,} / {tier['over_records']:,}" if tier else "-",
        _money(tier["calls_overage_minor"] + tier["records_overage_minor"] if tier else None, currency),
        _money(month["list_minor"], currency),
        _money(billed["amount_minor"], billed["currency"] if billed["amount_minor"] else currency),
        ", ".join(billed["invoice_ids"]) or "priced now (not invoiced yet)",
        _money(difference, currency),
        verdict(month["status"] == COVERED, month["status"], month["status"]),
    ]  # fmt: skip


def _money(minor: int | None, currency: str | None) -> Any:
    return "-" if minor is None else ("html", money(minor, currency or "XXX"))

