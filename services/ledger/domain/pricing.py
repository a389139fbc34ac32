"""Pure pricing: what one licensee owes for one calendar month (UTC), in integer minor units.

Rules (finance can rely on them; tests/unit/ledger/test_pricing.py states each as a table):
- Agreement in force at an instant: among the latest loaded version of each start date, the one with the
  latest `effective_from` that covers the instant (from inclusive, to exclusive).
- Fixed fee per month = `monthly_fee_minor` + the month's share of `annual_fee_minor`, which is
  `annual // 12`, with the `annual % 12` remainder minor units added to December, so a year sums exactly.
- Partial months are prorated by days: fee * covered_days / days_in_month, rounded half up to the minor
  unit. A UTC calendar day on which the agreement is in force at any instant counts as covered.
- Usage counts under the agreement in force at its event time (`occurred_at`, else its first event, else its
  bucket start).
  `included_records` is a per-month allowance of each agreement, not prorated.
- Overage = ceil(excess_records * overage_per_1000_records_minor / 1000): exact per record, rounded up
  to the next minor unit once per agreement and month (never per call).
- Usage with no agreement in force is priced 0 and listed as "usage without an active agreement".
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from services.core.agreements import Agreement
from services.core.month import Month
from services.ledger.errors import PricingError

PRICING_RULES = "2026-1"  # stored on each invoice; change it when a rule above changes
UNAGREED = "usage without an active agreement"
_DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Segment:
    """A stretch of time `[start, end)` in which one agreement is in force."""

    start: datetime
    end: datetime
    agreement: Agreement


@dataclass(frozen=True, slots=True)
class Usage:
    """Calls and records summed over some usage rows."""

    calls: int = 0
    records: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.calls + other.calls, self.records + other.records)


@dataclass(frozen=True, slots=True)
class Line:
    """One invoice line; `calls`/`records` are the usage it prices, `usage_month` the month it belongs to."""

    kind: str
    description: str
    amount_minor: int
    reference: str
    usage_month: Month | None = None
    calls: int = 0
    records: int = 0


@dataclass(frozen=True, slots=True)
class MonthCharges:
    """Everything a month's own usage and agreements cost."""

    month: Month
    currency: str | None
    lines: tuple[Line, ...] = field(default=())

    @property
    def usage_lines(self) -> tuple[Line, ...]:
        """The lines that price usage (what a late arrival is compared against)."""
        return tuple(line for line in self.lines if line.kind in ("usage", "unagreed_usage"))


def in_force(versions: Sequence[Agreement]) -> list[Agreement]:
    """The version in force for each start date: the last one in `versions` (ordered by load time)."""
    latest: dict[tuple[str, datetime], Agreement] = {}
    for agreement in versions:
        latest[(agreement.licensee_id, agreement.effective_from)] = agreement
    return sorted(latest.values(), key=lambda a: a.effective_from)


def agreement_at(agreements: Sequence[Agreement], at: datetime) -> Agreement | None:
    """The agreement in force at `at`: the latest-starting one that covers it."""
    covering = [a for a in agreements if a.is_active(at)]
    return max(covering, key=lambda a: a.effective_from) if covering else None


def coverage(agreements: Sequence[Agreement], start: datetime, end: datetime) -> list[Segment]:
    """Split `[start, end)` into stretches each governed by one agreement; gaps are left out."""
    cuts = {start, end}
    for agreement in agreements:
        for moment in (agreement.effective_from, agreement.effective_to):
            if moment is not None and start < moment < end:
                cuts.add(moment)
    ordered = sorted(cuts)
    segments: list[Segment] = []
    for lo, hi in itertools.pairwise(ordered):
        governing = agreement_at(agreements, lo)
        if governing is None:
            continue
        if segments and segments[-1].agreement is governing and segments[-1].end == lo:
            segments[-1] = Segment(segments[-1].start, hi, governing)
        else:
            segments.append(Segment(lo, hi, governing))
    return segments


def annual_share(annual_fee_minor: int, month: int) -> int:
    """The month's part of an annual fee: a twelfth, with the remainder in December."""
    return annual_fee_minor // 12 + (annual_fee_minor % 12 if month == 12 else 0)


def prorate(amount_minor: int, covered_days: int, days: int) -> int:
    """`amount * covered / days`, rounded half up to the minor unit."""
    return (2 * amount_minor * covered_days + days) // (2 * days)


def overage_minor(records: int, included: int, per_1000_minor: int) -> int:
    """Overage for `records` above `included`, rounded up to the next minor unit."""
    excess = max(0, records - included)
    return -(-excess * per_1000_minor // 1000)


def covered_days(segments: Sequence[Segment]) -> int:
    """UTC calendar days touched by any of `segments`."""
    days: set[date] = set()
    for segment in segments:
        day = segment.start.date()
        while datetime(day.year, day.month, day.day, tzinfo=UTC) < segment.end:
            days.add(day)
            day += _DAY
    return len(days)


def price_month(
    month: Month,
    segments: Sequence[Segment],
    usage: Mapping[int, Usage],
    unagreed: Usage,
    currency_hint: str | None = None,
) -> MonthCharges:
    """Price one month: `usage[i]` is the usage that fell in `segments[i]`; `unagreed` fell in no segment."""
    lines: list[Line] = []
    by_agreement: dict[int, list[int]] = {}
    for index, segment in enumerate(segments):
        by_agreement.setdefault(id(segment.agreement), []).append(index)
    currencies = {segments[i[0]].agreement.plan.currency for i in by_agreement.values()}
    if len(currencies) > 1:
        raise PricingError(
            f"{month}: agreements in more than one currency ({sorted(currencies)}); invoice by hand"
        )
    for indexes in by_agreement.values():
        lines += _agreement_lines(
            month, [segments[i] for i in indexes], sum((usage.get(i, Usage()) for i in indexes), Usage())
        )
    if unagreed.calls or unagreed.records:
        lines.append(
            Line(
                "unagreed_usage",
                f"{UNAGREED}: {unagreed.calls:,} calls, {unagreed.records:,} records",
                0,
                f"usage:{month}",
                month,
                unagreed.calls,
                unagreed.records,
            )
        )
    currency = currencies.pop() if currencies else currency_hint
    return MonthCharges(month, currency, tuple(lines))


def _agreement_lines(month: Month, segments: Sequence[Segment], used: Usage) -> list[Line]:
    agreement = segments[0].agreement
    plan = agreement.plan
    reference = f"agreement:{agreement.licensee_id}@{agreement.effective_from.isoformat()}"
    days = covered_days(segments)
    lines: list[Line] = []
    base = plan.monthly_fee_minor + annual_share(plan.annual_fee_minor, month.month)
    if base:
        share = "" if days == month.days else f", {days} of {month.days} days"
        parts = [
            p
            for p, v in (
                ("monthly fee", plan.monthly_fee_minor),
                ("annual fee (1/12)", plan.annual_fee_minor),
            )
            if v
        ]
        lines.append(
            Line(
                "fee",
                f"{' + '.join(parts)} for {month}{share}",
                prorate(base, days, month.days),
                reference,
                month,
            )
        )
    charge = overage_minor(used.records, plan.included_records, plan.overage_per_1000_records_minor)
    excess = max(0, used.records - plan.included_records)
    text = (
        f"usage {month}: {used.calls:,} calls, {used.records:,} records, {plan.included_records:,} included"
        + (f", {excess:,} over at {plan.overage_per_1000_records_minor} per 1000" if excess else "")
    )
    lines.append(Line("usage", text, charge, reference, month, used.calls, used.records))
    return lines


def late_usage_line(charges: MonthCharges, billed: Usage, billed_minor: int, invoice_id: str) -> Line | None:
    """The adjustment for usage of an invoiced month recorded after its invoice, or None if there is none."""
    now = sum((Usage(line.calls, line.records) for line in charges.usage_lines), Usage())
    if now.calls <= billed.calls and now.records <= billed.records:
        return None
    amount = sum(line.amount_minor for line in charges.usage_lines) - billed_minor
    calls, records = now.calls - billed.calls, now.records - billed.records
    text = f"usage for {charges.month} recorded after {invoice_id} was issued: "
    text += f"{calls:,} calls, {records:,} records"
    return Line("late_usage", text, amount, invoice_id, charges.month, calls, records)
