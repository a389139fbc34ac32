"""The demo's tables and money formatting read right."""

import pytest

from services.demo.tables import money, render_table


@pytest.mark.parametrize(
    ("minor", "text"),
    [
        (0, "USD 0.00"),
        (10000, "USD 100.00"),
        (15077500, "USD 150,775.00"),
        (-250, "USD -2.50"),
        (7, "USD 0.07"),
    ],
)
def test_minor_units_are_shown_as_a_decimal_amount(minor: int, text: str) -> None:
    assert money(minor, "USD") == text


def test_a_table_aligns_text_left_and_numbers_right() -> None:
    table = render_table("Usage", ["licensee", "calls"], [["omnisoft", 3240], ["pebble", 300]])
    lines = table.splitlines()
    assert lines[0] == "== Usage =="
    assert lines[3] == "omnisoft  3,240"
    assert lines[4] == "pebble      300"


def test_an_empty_table_says_none() -> None:
    assert "(none)" in render_table("Alerts", ["rule"], [])
