"""Usage query parameters: each bad one is a 400 naming it; good ones make the query asked for."""

from __future__ import annotations

import pytest

from services.ledger.adapters.postgres.usage_query import parse_query
from services.ledger.errors import BadParameter

RANGE = {"from": "2026-10-01", "to": "2026-11-01"}


@pytest.mark.parametrize(
    ("given", "field"),
    [
        ({"to": "2026-11-01"}, "from"),
        ({"from": "2026-10-01"}, "to"),
        ({**RANGE, "to": "2026-09-01"}, "to"),
        ({"from": "2025-01-01", "to": "2026-11-01"}, "to"),
        ({**RANGE, "from": "2026-10-0\u0661"}, "from"),
        ({**RANGE, "window": "week"}, "window"),
        ({**RANGE, "window": "HOUR"}, "window"),
        ({**RANGE, "group_by": "app,app"}, "group_by"),
        ({**RANGE, "group_by": "app,"}, "group_by"),
        ({**RANGE, "group_by": "licensee"}, "group_by"),
        ({**RANGE, "group_by": "app;DROP TABLE usage_entries"}, "group_by"),
        ({**RANGE, "licensee": "-bad"}, "licensee"),
        ({**RANGE, "limit": "\u00b2"}, "limit"),
        ({**RANGE, "limit": "10001"}, "limit"),
    ],
)
def test_a_bad_parameter_is_refused_naming_it(given: dict[str, str], field: str) -> None:
    with pytest.raises(BadParameter) as caught:
        parse_query(given)
    assert caught.value.field == field


def test_a_good_query_keeps_what_was_asked_and_lists_its_csv_columns() -> None:
    query = parse_query({**RANGE, "licensee": "omnisoft", "window": "day", "group_by": "org_type,app"})
    assert (query.licensee_id, query.window, query.group_by, query.limit) == (
        "omnisoft", "day", ("org_type", "app"), 1000)  # fmt: skip
    assert query.columns == ("licensee_id", "window_start", "window_end", "org_type", "app_id", "calls",
                             "records")  # fmt: skip
