"""Pricing rules, one table per rule: fees, proration, allowance, overage, coverage and late usage."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from services.core.agreements import Agreement, parse_agreement
from services.ledger.domain.pricing import (
    UNAGREED,
    Month,
    Usage,
    annual_share,
    coverage,
    covered_days,
    in_force,
    late_usage_line,
    overage_minor,
    price_month,
    prorate,
)
from services.ledger.errors import PricingError

OCT = Month(2026, 10)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def agreement(
    licensee: str = "acme", start: str = "2026-01-01", end: str | None = None, **plan: Any
) -> Agreement:
    data = {
        "licensee_id": licensee, "name": licensee.title(),
        "effective_from": f"{start}T00:00:00Z" if "T" not in start else start,
        "effective_to": (f"{end}T00:00:00Z" if "T" not in end else end) if end else None,
        "plan": {"monthly_fee_minor": 0, "annual_fee_minor": 0, "currency": "USD", "included_records": 0,
                 "overage_per_1000_records_minor": 0, **plan},
        "limits": {"calls_per_month": 10, "records_per_month": 10, "calls_per_minute": 10},
        "apps": [{"app_id": "app", "use_case": "x"}], "government_use": "prohibited",
            "government_notices": [],
    }  # fmt: skip
    return parse_agreement(data)


@pytest.mark.parametrize(("annual", "month", "share"), [
    (180_000_000, 10, 15_000_000),
    (180_000_000, 12, 15_000_000),
    (100_000, 1, 8_333),
    (100_000, 11, 8_333),
    (100_000, 12, 8_337),  # 11 * 8,333 + 8,337 = 100,000 exactly
    (11, 1, 0),
    (11, 12, 11),
    (0, 12, 0),
])  # fmt: skip
def test_an_annual_fee_is_billed_a_twelfth_a_month_with_the_remainder_in_december(
    annual: int, month: int, share: int
) -> None:
    assert annual_share(annual, month) == share


@pytest.mark.parametrize("annual", [0, 1, 11, 12, 13, 100_000, 180_000_000, 999_999_999_999])
def test_the_twelve_monthly_shares_of_an_annual_fee_sum_to_it_exactly(annual: int) -> None:
    assert sum(annual_share(annual, month) for month in range(1, 13)) == annual


@pytest.mark.parametrize(("amount", "covered", "days", "expected"), [
    (10_000, 31, 31, 10_000),
    (10_000, 0, 31, 0),
    (10_000, 15, 30, 5_000),
    (10_000, 1, 31, 323),      # 322.58 rounds up
    (10_000, 10, 31, 3_226),   # 3,225.8 rounds up
    (100, 1, 8, 13),           # 12.5 rounds half up
    (3, 1, 2, 2),              # 1.5 rounds half up
    (10_001, 14, 28, 5_001),   # 5,000.5 rounds half up
])  # fmt: skip
def test_a_partial_month_is_prorated_by_covered_days_rounding_half_up(
    amount: int, covered: int, days: int, expected: int
) -> None:
    assert prorate(amount, covered, days) == expected


@pytest.mark.parametrize(("records", "included", "rate", "charge"), [
    (81_000, 50_000, 2_500, 77_500),
    (50_000, 50_000, 2_500, 0),
    (49_999, 50_000, 2_500, 0),
    (50_001, 50_000, 2_500, 3),     # 2.5 minor units round up to 3
    (50_001, 50_000, 1_000, 1),     # exactly 1
    (50_001, 50_000, 1, 1),         # 0.001 rounds up to 1: never free
    (1_234, 0, 500, 617),
    (0, 0, 500, 0),
    (10**12, 0, 2_500, 2_500_000_000_000),
])  # fmt: skip
def test_overage_is_charged_per_record_over_the_allowance_rounded_up_to_the_minor_unit(
    records: int, included: int, rate: int, charge: int
) -> None:
    assert overage_minor(records, included, rate) == charge


@pytest.mark.parametrize(("start", "end", "segments", "days"), [
    ("2026-01-01", None, [("2026-10-01", "2026-11-01")], 31),
    ("2026-10-15", None, [("2026-10-15", "2026-11-01")], 17),
    ("2026-01-01", "2026-10-11", [("2026-10-01", "2026-10-11")], 10),
    ("2026-10-10T12:00:00Z", "2026-10-11T06:00:00Z", [("2026-10-10T12:00:00", "2026-10-11T06:00:00")], 2),
    ("2025-01-01", "2026-10-01", [], 0),
    ("2026-11-01", None, [], 0),
])  # fmt: skip
def test_coverage_keeps_the_part_of_the_month_an_agreement_is_in_force_and_counts_started_days(
    start: str, end: str | None, segments: list[tuple[str, str]], days: int
) -> None:
    found = coverage([agreement(start=start, end=end)], OCT.start, OCT.end)
    assert [(s.start, s.end) for s in found] == [(at(a), at(b)) for a, b in segments]
    assert covered_days(found) == days


def test_a_later_agreement_takes_over_from_its_start_and_the_earlier_one_resumes_after_it_ends() -> None:
    base, promo = agreement(start="2026-01-01"), agreement(start="2026-10-10", end="2026-10-20")
    found = coverage([base, promo], OCT.start, OCT.end)
    assert [(s.start.day, s.end.day if s.end.month == 10 else 32, s.agreement) for s in found] == [
        (1, 10, base), (10, 20, promo), (20, 32, base)]  # fmt: skip


def test_the_latest_loaded_version_of_an_agreement_start_is_the_one_in_force() -> None:
    first, amended = agreement(monthly_fee_minor=100), agreement(monthly_fee_minor=200)
    assert in_force([first, amended]) == [amended]


@pytest.mark.parametrize(("plan", "usage", "fee", "usage_charge"), [
    ({"annual_fee_minor": 180_000_000, "included_records": 50_000, "overage_per_1000_records_minor": 2_500},
     Usage(3_240, 81_000), 15_000_000, 77_500),
    ({"monthly_fee_minor": 10_000, "included_records": 10_000, "overage_per_1000_records_minor": 500},
     Usage(300, 3_000), 10_000, 0),
    ({"monthly_fee_minor": 10_000, "included_records": 10_000, "overage_per_1000_records_minor": 500},
     Usage(0, 0), 10_000, 0),
    ({"monthly_fee_minor": 0, "included_records": 0, "overage_per_1000_records_minor": 333},
     Usage(1, 1), None, 1),
])  # fmt: skip
def test_a_full_month_costs_its_fee_plus_overage(
    plan: dict[str, int], usage: Usage, fee: int | None, usage_charge: int
) -> None:
    charges = price_month(OCT, coverage([agreement(**plan)], OCT.start, OCT.end), {0: usage}, Usage())
    fees = [line.amount_minor for line in charges.lines if line.kind == "fee"]
    assert fees == ([fee] if fee is not None else [])
    assert [(u.amount_minor, u.calls, u.records) for u in charges.usage_lines] == [
        (usage_charge, usage.calls, usage.records)]  # fmt: skip
    assert charges.currency == "USD"


def test_usage_without_an_agreement_is_priced_zero_and_listed_for_finance() -> None:
    ended = agreement(start="2025-01-01", end="2026-10-01", monthly_fee_minor=50_000)
    charges = price_month(OCT, coverage([ended], OCT.start, OCT.end), {}, Usage(50, 250), "USD")
    assert [(line.kind, line.amount_minor, line.calls, line.records) for line in charges.lines] == [
        ("unagreed_usage", 0, 50, 250)]  # fmt: skip
    assert UNAGREED in charges.lines[0].description
    assert charges.currency == "USD"


def test_an_agreement_ending_mid_month_pays_the_days_it_covered() -> None:
    ending = agreement(start="2026-01-01", end="2026-10-16", monthly_fee_minor=31_000)
    charges = price_month(OCT, coverage([ending], OCT.start, OCT.end), {0: Usage(1, 1)}, Usage(2, 2))
    assert [(line.kind, line.amount_minor) for line in charges.lines] == [
        ("fee", 15_000), ("usage", 0), ("unagreed_usage", 0)]  # fmt: skip


def test_two_currencies_in_one_month_are_refused() -> None:
    usd, eur = agreement(start="2026-01-01", end="2026-10-15"), agreement(start="2026-10-15", currency="EUR")
    with pytest.raises(PricingError):
        price_month(OCT, coverage([usd, eur], OCT.start, OCT.end), {}, Usage())


@pytest.mark.parametrize(("now", "billed", "billed_minor", "expected"), [
    (Usage(3_240, 81_000), Usage(3_240, 81_000), 77_500, None),
    (Usage(3_241, 81_025), Usage(3_240, 81_000), 77_500, (1, 25, 63)),     # 31,025 over: 77,562.5 -> 77,563
    (Usage(100, 40_000), Usage(90, 36_000), 0, (10, 4_000, 0)),            # still inside the allowance
    (Usage(10, 60_000), Usage(0, 0), 0, (10, 60_000, 25_000)),             # nothing billed before
])  # fmt: skip
def test_usage_recorded_after_its_month_was_invoiced_becomes_a_late_usage_line_for_the_difference(
    now: Usage, billed: Usage, billed_minor: int, expected: tuple[int, int, int] | None
) -> None:
    plan = {
        "annual_fee_minor": 180_000_000,
        "included_records": 50_000,
        "overage_per_1000_records_minor": 2_500,
    }
    charges = price_month(OCT, coverage([agreement(**plan)], OCT.start, OCT.end), {0: now}, Usage())
    line = late_usage_line(charges, billed, billed_minor, "INV-acme-2026-10")
    if expected is None:
        assert line is None
        return
    assert line is not None
    assert (line.calls, line.records, line.amount_minor) == expected
    assert (line.kind, line.reference, line.usage_month) == ("late_usage", "INV-acme-2026-10", OCT)


@pytest.mark.parametrize(("text", "month"), [("2026-10", Month(2026, 10)), ("0001-01", Month(1, 1))])
def test_a_month_parses_from_year_dash_month(text: str, month: Month) -> None:
    assert Month.parse(text) == month
    assert str(month) == text


@pytest.mark.parametrize(
    "text", ["2026-13", "2026-1", "2026-00", "26-10", "2026/10", "", "2026-10-01", "0000-01"]
)
def test_anything_else_is_not_a_month(text: str) -> None:
    with pytest.raises(ValueError):
        Month.parse(text)


@pytest.mark.parametrize(("month", "days", "following"), [
    (Month(2026, 2), 28, Month(2026, 3)), (Month(2028, 2), 29, Month(2028, 3)), (Month(2026, 12), 31,
        Month(2027, 1)),
])  # fmt: skip
def test_months_know_their_length_and_successor(month: Month, days: int, following: Month) -> None:
    assert (month.days, month.next(), month.end) == (days, following, following.start)
