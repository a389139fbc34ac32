"""Group roll-ups in the reports (pure): each month over the members against the group's caps, the orgs
shared between licensees in one month, the CSV rows, and the audit report's escaped sections."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from services.ledger.domain.audit_groups import group_section, shared_orgs_section
from services.ledger.domain.group_report import MemberMonth, OrgUse, csv_rows, rollup, shared_orgs

OCT, NOV = date(2026, 10, 1), date(2026, 11, 1)


@pytest.mark.parametrize(
    ("rows", "caps", "expected"),
    [
        ([MemberMonth("a", OCT, 60, 10), MemberMonth("b", OCT, 50, 5)], {"calls_per_month": 100},
         [("2026-10", 110, 15, [("calls", 100, True)])]),
        ([MemberMonth("a", OCT, 40, 10), MemberMonth("b", NOV, 50, 5)], {"calls_per_month": 100},
         [("2026-10", 40, 10, [("calls", 100, False)]), ("2026-11", 50, 5, [("calls", 100, False)])]),
        ([MemberMonth("a", OCT, 1, 900)], {"calls_per_month": 10, "records_per_month": 900},
         [("2026-10", 1, 900, [("calls", 10, False), ("records", 900, True)])]),
        ([MemberMonth("a", OCT, 1, 1)], None, [("2026-10", 1, 1, [])]),  # a parent without a record
        ([], {"calls_per_month": 1}, []),
    ],
)  # fmt: skip
def test_a_group_month_sums_its_members_and_says_which_cap_it_reached(
    rows: list[MemberMonth], caps: dict[str, Any] | None, expected: list[tuple[Any, ...]]
) -> None:
    found = rollup("g", ["a", "b"], caps, rows)
    assert [(m["month"], m["calls"], m["records"], [(c["metric"], c["cap"], c["reached"]) for c in m["caps"]])
            for m in found] == expected  # fmt: skip


def test_a_member_without_use_in_a_month_is_named_for_that_month() -> None:
    [month] = rollup("g", ["a", "b", "c"], None, [MemberMonth("b", OCT, 1, 1)])
    assert month["members_without_use"] == ["a", "c"]


@pytest.mark.parametrize(
    ("uses", "parents", "expected"),
    [
        # one org under two licensees of one group in October: listed, within one group
        ([OrgUse(OCT, "org", "commercial", "a", 5, 1), OrgUse(OCT, "org", "commercial", "b", 2, 1)],
         {"a": "g", "b": "g"}, [("2026-10", "org", ["a", "b"], True)]),
        # under two licensees of no group: listed, several licensees
        ([OrgUse(OCT, "org", None, "a", 5, 1), OrgUse(OCT, "org", None, "b", 2, 1)], {},
         [("2026-10", "org", ["a", "b"], False)]),
        # the same org under different licensees in different months: not one month, not listed
        ([OrgUse(OCT, "org", None, "a", 5, 1), OrgUse(NOV, "org", None, "b", 2, 1)], {}, []),
        # a parent licensee and its member count as one group
        ([OrgUse(OCT, "org", None, "g", 5, 1), OrgUse(OCT, "org", None, "a", 2, 1)], {"a": "g"},
         [("2026-10", "org", ["a", "g"], True)]),
    ],
)  # fmt: skip
def test_a_requester_org_is_listed_when_one_month_saw_it_under_several_licensees(
    uses: list[OrgUse], parents: dict[str, str], expected: list[tuple[Any, ...]]
) -> None:
    found = shared_orgs(uses, parents)
    assert [(o["month"], o["org_id"], [u["licensee_id"] for u in o["licensees"]], o["one_group"])
            for o in found] == expected  # fmt: skip


def test_the_csv_holds_a_row_per_member_month_and_the_group_total_with_its_caps() -> None:
    months = rollup("g", ["a"], {"calls_per_month": 9}, [MemberMonth("a", OCT, 3, 4)])
    rows = csv_rows({"months": months})
    assert [(r["section"], r["licensee_id"], r["calls"], r.get("calls_cap")) for r in rows] == [
        ("group_member_month", "a", 3, None),
        ("group_month", "", 3, 9),
    ]
    assert csv_rows(None) == []


def test_the_audit_sections_escape_licensee_provided_names() -> None:
    months = rollup("<g>", ["<a>"], {"calls_per_month": 1}, [MemberMonth("<a>", OCT, 3, 4)])
    group = {"group_id": "<g>", "name": "<script>", "members": ["<a>"], "caps": {"calls_per_month": 1},
             "months": months, "alerts": []}  # fmt: skip
    html = group_section({"group": group})
    assert "<script>" not in html and "&lt;script&gt;" in html and "cap reached: 3 of 1 calls" in html
    shared = shared_orgs([OrgUse(OCT, "<o>", None, "<a>", 1, 1), OrgUse(OCT, "<o>", None, "b", 1, 1)], {})
    assert "<o>" not in shared_orgs_section({"shared_orgs": shared})
    assert "belongs to no group" in group_section({"group": None})
