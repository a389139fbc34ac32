"""Unbilled exposure, one table per rule: usage -> cheapest covering tier -> list price -> gap to billed."""

from __future__ import annotations

from typing import Any

import pytest

from services.core.month import Month
from services.ledger.domain.catalogue import Catalogue, Tier, default_catalogue
from services.ledger.domain.exposure import (
    COVERED,
    FROM_INVOICE,
    NO_TIER,
    NOT_COMPARABLE,
    PRICED_NOW,
    UNBILLED,
    Billed,
    assess,
    cheapest,
    document,
    quote,
)
from services.ledger.domain.pricing import Usage

OCT, DEC = Month(2026, 10), Month(2026, 12)
ENTERPRISE_MONTH = 200_000_000 // 12  # USD 2M a year: 16,666,666 minor units a month, 8 more in December


# The shipped catalogue: basic USD 100/month (1,000 calls, 10,000 records, records overage 5.00 per 1,000),
# pro USD 5,000/month (1,500 calls, 30,000 records, 10.00 per 1,000 records), enterprise USD 2M/year
# (2,000 calls, 60,000 records, 50.00 per 1,000 calls, 25.00 per 1,000 records).
@pytest.mark.parametrize(("calls", "records", "tier", "total"), [
    (300, 3_000, "basic", 10_000),                      # pebble's month: the basic tier covers it
    (1_000, 10_000, "basic", 10_000),                   # exactly the included volume
    (1_000, 10_001, "basic", 10_001),                   # one record over: 0.5 minor, rounded up
    (900, 500_000, "basic", 10_000 + 245_000),          # records overage is sold: still cheapest
    (1_001, 100, "pro", 500_000),                       # one call past basic's hard stop
    (1_500, 30_000, "pro", 500_000),
    (1_200, 200_000, "pro", 500_000 + 170_000),
    (1_501, 1_000, "enterprise", ENTERPRISE_MONTH),     # past pro's calls: only enterprise sells more
    (2_000, 60_000, "enterprise", ENTERPRISE_MONTH),    # enterprise-scale volume, nothing over
    (3_240, 81_000, "enterprise", ENTERPRISE_MONTH + 6_200 + 52_500),  # omnisoft's October
])  # fmt: skip
def test_the_cheapest_covering_tier_of_the_shipped_catalogue(calls: int, records: int, tier: str,
                                                             total: int) -> None:  # fmt: skip
    found = cheapest(default_catalogue(), Usage(calls, records), OCT)
    assert found is not None and (found.tier.tier_id, found.total_minor) == (tier, total)


def tier(tier_id: str, **terms: Any) -> Tier:
    return Tier(tier_id, tier_id.title(), **terms)


LIMITED = tier("limited", monthly_fee_minor=100, included_calls=10, included_records=10)
RECORDS_ONLY = tier("records-only", monthly_fee_minor=500, included_records=100)
METERED = tier("metered", included_calls=0, included_records=0, overage_per_1000_calls_minor=1,
               overage_per_1000_records_minor=3)  # fmt: skip
YEARLY = tier("yearly", annual_fee_minor=1_211, included_calls=5)


@pytest.mark.parametrize(("given", "usage", "month", "fee", "over", "overage", "total"), [
    (LIMITED, Usage(10, 10), OCT, 100, (0, 0), (0, 0), 100),
    (LIMITED, Usage(11, 0), OCT, None, None, None, None),       # past the calls, no call overage sold
    (LIMITED, Usage(0, 11), OCT, None, None, None, None),       # past the records likewise
    (RECORDS_ONLY, Usage(10**9, 100), OCT, 500, (0, 0), (0, 0), 500),  # no calls volume: no calls limit
    (METERED, Usage(1, 1), OCT, 0, (1, 1), (1, 1), 2),          # a fraction of a minor unit rounds up
    (METERED, Usage(1_000, 334), OCT, 0, (1_000, 334), (1, 2), 3),  # 1,002/1,000 -> 2
    (YEARLY, Usage(5, 10**6), OCT, 100, (0, 0), (0, 0), 100),   # a twelfth of the annual fee
    (YEARLY, Usage(5, 0), DEC, 111, (0, 0), (0, 0), 111),       # December takes the remainder
])  # fmt: skip
def test_a_tier_prices_a_month_or_does_not_cover_it(
    given: Tier, usage: Usage, month: Month, fee: int | None, over: tuple[int, int] | None,
    overage: tuple[int, int] | None, total: int | None,
) -> None:  # fmt: skip
    found = quote(given, usage, month)
    if total is None:
        assert found is None
        return
    assert found is not None
    assert (found.fee_minor, (found.over_calls, found.over_records)) == (fee, over)
    assert ((found.calls_overage_minor, found.records_overage_minor), found.total_minor) == (overage, total)


@pytest.mark.parametrize(("tiers", "usage", "chosen"), [
    ((LIMITED, tier("same-price", monthly_fee_minor=100, included_calls=10)), Usage(1, 1), "limited"),
    ((tier("same-price", monthly_fee_minor=100, included_calls=10), LIMITED), Usage(1, 1), "same-price"),
    ((LIMITED, RECORDS_ONLY), Usage(11, 1), "records-only"),
    ((LIMITED, METERED), Usage(5, 5), "metered"),               # cheaper by the maths, not by the order
    ((LIMITED,), Usage(11, 1), None),                           # no tier covers it
])  # fmt: skip
def test_ties_go_to_the_first_tier_listed_and_none_covers_too_much(
    tiers: tuple[Tier, ...], usage: Usage, chosen: str | None
) -> None:
    found = cheapest(Catalogue("test", "USD", tiers), usage, OCT)
    assert (found.tier.tier_id if found else None) == chosen


INVOICED = ("INV-x-2026-10",)


@pytest.mark.parametrize(("usage", "billed", "listed", "difference", "status"), [
    # omnisoft: USD 1.8M a year plus overage, where the published enterprise tier lists more
    (Usage(3_240, 81_000), Billed(FROM_INVOICE, 15_077_500, "USD", INVOICED),
     16_725_366, 1_647_866, UNBILLED),
    (Usage(300, 3_000), Billed(FROM_INVOICE, 10_000, "USD", INVOICED), 10_000, 0, COVERED),  # pebble
    (Usage(50, 250), Billed(FROM_INVOICE, 0, "XXX", INVOICED), 10_000, 10_000, UNBILLED),  # oldco: none
    # enterprise-scale volume, nothing paid: the whole enterprise month is the gap
    (Usage(2_500, 70_000), Billed(PRICED_NOW, 0, None), 16_694_166, 16_694_166, UNBILLED),
    (Usage(0, 0), Billed(FROM_INVOICE, 15_000_000, "USD", INVOICED), 0, -15_000_000, COVERED),  # a fee only
    (Usage(300, 3_000), Billed(FROM_INVOICE, 9_000, "EUR", INVOICED), 10_000, None, NOT_COMPARABLE),
])  # fmt: skip
def test_the_gap_is_list_price_minus_billed(
    usage: Usage, billed: Billed, listed: int, difference: int | None, status: str
) -> None:
    found = assess("x", OCT, usage, default_catalogue(), billed)
    assert (found.list_minor, found.difference_minor, found.status) == (listed, difference, status)


def test_usage_no_tier_covers_is_said_and_not_compared() -> None:
    found = assess("x", OCT, Usage(11, 0), Catalogue("c", "USD", (LIMITED,)), Billed(PRICED_NOW, 0, "USD"))
    assert (found.list_minor, found.difference_minor, found.status) == (None, None, NO_TIER)
    assert f"List price: {NO_TIER}." in document(found)["summary"]


def test_the_document_names_the_tier_its_volumes_the_overage_and_the_gap_in_words() -> None:
    billed = Billed(FROM_INVOICE, 15_077_500, "USD", ("INV-omnisoft-2026-10",))
    shown = document(assess("omnisoft", OCT, Usage(3_240, 81_000), default_catalogue(), billed))
    quoted = shown["list_price"]
    assert (quoted["tier_id"], quoted["included_calls"], quoted["included_records"]) == (
        "enterprise", 2_000, 60_000)  # fmt: skip
    assert (quoted["over_calls"], quoted["calls_overage_minor"], quoted["records_overage_minor"]) == (
        1_240, 6_200, 52_500)  # fmt: skip
    assert (shown["unbilled_minor"], shown["billed"]["source"], shown["month"]) == (
        1_647_866, "invoice", "2026-10")  # fmt: skip
    assert shown["summary"] == (
        "omnisoft used 3,240 calls and 81,000 records in 2026-10. At list price that is USD 167,253.66 on "
        "Enterprise (USD 166,666.66 fee, 2,000 calls and 60,000 records included, 1,240 calls and 21,000 "
        "records over: USD 587.00 overage). Billed: USD 150,775.00 (invoice INV-omnisoft-2026-10). "
        "Unbilled exposure: USD 16,478.66."
    )  # fmt: skip
