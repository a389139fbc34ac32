"""Request parameters: each bad one is refused naming the field."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from services.core.month import Month
from services.ledger.domain import params
from services.ledger.errors import BadParameter


@pytest.mark.parametrize(("query", "expected"), [
    ({}, (None, None)),
    ({"from": "2026-10-01"}, (datetime(2026, 10, 1, tzinfo=UTC), None)),
    ({"to": "2026-11"}, (None, datetime(2026, 11, 1, tzinfo=UTC))),
    ({"from": "2026-10-01T12:00:00+02:00", "to": "2026-10-02T00:00:00Z"},
     (datetime(2026, 10, 1, 10, tzinfo=UTC), datetime(2026, 10, 2, tzinfo=UTC))),
])  # fmt: skip
def test_a_time_range_takes_days_months_or_rfc3339_times(
    query: dict[str, str], expected: tuple[datetime | None, datetime | None]
) -> None:
    assert params.time_range(query) == expected


@pytest.mark.parametrize(("query", "field"), [
    ({"from": "yesterday"}, "from"),
    ({"from": "2026-02-30"}, "from"),
    ({"to": "2026-10-01T00:00:00"}, "to"),        # no offset: ambiguous
    ({"to": "2026-13"}, "to"),
    ({"from": "9" * 100}, "from"),
    ({"from": "2026-10-02", "to": "2026-10-01"}, "to"),
    ({"from": "2026-10-01", "to": "2026-10-01"}, "to"),
    ({"from": "'; DROP TABLE ledger_entries; --"}, "from"),
])  # fmt: skip
def test_a_bad_time_range_names_the_parameter(query: dict[str, str], field: str) -> None:
    with pytest.raises(BadParameter) as caught:
        params.time_range(query)
    assert caught.value.field == field


@pytest.mark.parametrize(("raw", "ok"), [
    ("2026-10", Month(2026, 10)), ("2026-1", None), ("2026-13", None), ("latest", None), ("", None),
])  # fmt: skip
def test_a_month_is_year_dash_month(raw: str, ok: Month | None) -> None:
    if ok is not None:
        assert params.month(raw) == ok
        return
    with pytest.raises(BadParameter, match="month"):
        params.month(raw)


@pytest.mark.parametrize(("raw", "ok"), [
    ("omnisoft", True), ("a.b:c@d/e-f_g", True), ("", False), ("-lead", False), ("a b", False),
        ("x" * 129, False),
    ("é", False),
])  # fmt: skip
def test_a_licensee_id_follows_the_message_schemas(raw: str, ok: bool) -> None:
    if ok:
        assert params.licensee(raw) == raw
        return
    with pytest.raises(BadParameter, match="licensee_id"):
        params.licensee(raw)


@pytest.mark.parametrize(("raw", "expected"), [(None, 1000), ("", 1000), ("1", 1), ("10000", 10000)])
def test_limit_defaults_to_a_thousand(raw: str | None, expected: int) -> None:
    assert params.limit({} if raw is None else {"limit": raw}) == expected


@pytest.mark.parametrize("raw", ["0", "10001", "-1", "ten", "1.5"])
def test_limit_outside_one_to_ten_thousand_is_refused(raw: str) -> None:
    with pytest.raises(BadParameter, match="limit"):
        params.limit({"limit": raw})


GOOD = {"amount_minor": -5000, "reason": "goodwill", "reference": "INV-x-2026-10"}


@pytest.mark.parametrize(("body", "field"), [
    ([], "body"),
    ({**GOOD, "amount_minor": 0}, "amount_minor"),
    ({**GOOD, "amount_minor": 1.5}, "amount_minor"),
    ({**GOOD, "amount_minor": "100"}, "amount_minor"),
    ({**GOOD, "amount_minor": True}, "amount_minor"),
    ({**GOOD, "amount_minor": 10**16}, "amount_minor"),
    ({**GOOD, "reason": " "}, "reason"),
    ({**GOOD, "reason": "x" * 501}, "reason"),
    ({k: v for k, v in GOOD.items() if k != "reference"}, "reference"),
    ({**GOOD, "currency": "usd"}, "currency"),
    ({**GOOD, "note": "?"}, "note"),
])  # fmt: skip
def test_a_bad_adjustment_names_its_field(body: Any, field: str) -> None:
    with pytest.raises(BadParameter) as caught:
        params.adjustment(body)
    assert caught.value.field == field


def test_a_good_adjustment_is_accepted() -> None:
    assert params.adjustment({**GOOD, "currency": "USD"}) == params.Adjustment(
        -5000, "goodwill", "INV-x-2026-10", "USD"
    )


@pytest.mark.parametrize(("accept", "csv"), [
    ("text/csv", True), ("application/json, text/csv;q=0.5", True), ("TEXT/CSV", True), ("", False),
    ("*/*", False), ("application/json", False),
])  # fmt: skip
def test_csv_is_chosen_only_when_the_client_accepts_text_csv(accept: str, csv: bool) -> None:
    assert params.wants_csv(accept) is csv


# Digits Python's str.isdigit() or int() take beyond ASCII: superscript two, fullwidth, Arabic-Indic.
NOT_ASCII_DIGITS = ["\u00b2", "\uff11\uff10", "\u0661\u0660", "1\u00b2", "\U0001d7d9"]


@pytest.mark.parametrize(("raw", "expected"), [
    ("0", 0), ("0042", 42), ("9" * 18, 10**18 - 1), ("", None), ("+5", None), ("-1", None), (" 5", None),
    ("1_000", None), ("1.0", None), ("5\n", None), *[(digits, None) for digits in NOT_ASCII_DIGITS],
])  # fmt: skip
def test_only_ascii_digits_read_as_an_integer(raw: str, expected: int | None) -> None:
    assert params.ascii_int(raw) == expected


@pytest.mark.parametrize("raw", [*NOT_ASCII_DIGITS, "1_0", "+5", "9" * 5000])
def test_a_limit_of_other_digits_is_refused_naming_it(raw: str) -> None:
    with pytest.raises(BadParameter) as caught:
        params.limit({"limit": raw})
    assert caught.value.field == "limit"


@pytest.mark.parametrize("raw", ["\uff12\uff10\uff12\uff16-10", "\u0662\u0660\u0662\u0666-10", "2026-1\u0660",
                                 "2026-10\n"])  # fmt: skip
def test_a_month_of_other_digits_is_refused_naming_it(raw: str) -> None:
    with pytest.raises(BadParameter, match="month"):
        params.month(raw)


@pytest.mark.parametrize("raw", ["\uff12\uff10\uff12\uff16-10-01", "2026-10-0\u0661",
                                 "\u0662\u0660\u0662\u0666-10", "2026-10-01T00:00:0\uff10Z"])  # fmt: skip
@pytest.mark.parametrize("name", ["from", "to"])
def test_a_time_bound_of_other_digits_is_refused_naming_it(name: str, raw: str) -> None:
    with pytest.raises(BadParameter) as caught:
        params.time_range({name: raw})
    assert caught.value.field == name


@pytest.mark.parametrize("reference", [*NOT_ASCII_DIGITS, "INV-x-2026-1\uff10", "tab\there"])
def test_a_reference_that_is_not_printable_ascii_is_refused_naming_it(reference: str) -> None:
    with pytest.raises(BadParameter) as caught:
        params.adjustment({**GOOD, "reference": reference})
    assert caught.value.field == "reference"


def test_a_licensee_id_with_a_trailing_newline_is_refused() -> None:
    with pytest.raises(BadParameter, match="licensee_id"):
        params.licensee("omnisoft\n")


STORED = {"amount_minor": -5000, "reason": "goodwill", "reference": "INV-x-2026-10", "currency": "USD"}


@pytest.mark.parametrize(("request_body", "same"), [
    (GOOD, True),
    ({**GOOD, "currency": "USD"}, True),
    ({**GOOD, "reason": "  goodwill "}, True),  # stored stripped, compared stripped
    ({**GOOD, "amount_minor": -5001}, False),
    ({**GOOD, "reason": "other"}, False),
    ({**GOOD, "reference": "12"}, False),
    ({**GOOD, "currency": "EUR"}, False),
])  # fmt: skip
def test_a_retry_matches_its_stored_entry_and_a_different_adjustment_does_not(
    request_body: dict[str, Any], same: bool
) -> None:
    assert params.adjustment(request_body).matches(STORED) is same
