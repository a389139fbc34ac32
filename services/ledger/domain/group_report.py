"""Licensee groups in the reports, assembled from query rows (pure): each month of a group rolled up over
its members against the group's caps, and the requester orgs that one month saw under several licensees.

A group is the `parent_id` its members' agreements name; the group's own record (kind "group") may cap
the members' sum per calendar month. A parent that is itself a licensee counts with its members.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

METRICS = ("calls", "records")
# The usage report's CSV columns for its group rows, after render.REPORT_COLUMNS.
GROUP_COLUMNS = ("group_id", "licensee_id", "calls_cap", "records_cap")


@dataclass(frozen=True, slots=True)
class MemberMonth:
    """One member's metered calls and records in one calendar month (UTC)."""

    licensee_id: str
    month: date
    calls: int
    records: int


@dataclass(frozen=True, slots=True)
class OrgUse:
    """One requester org's calls and records under one licensee in one month."""

    month: date
    org_id: str
    org_type: str | None
    licensee_id: str
    calls: int
    records: int


def rollup(
    group_id: str, members: Sequence[str], caps: Mapping[str, Any] | None, rows: Iterable[MemberMonth]
) -> list[dict[str, Any]]:
    """Per month: each member's use, the group's total, and each cap of the group's record against it."""
    months: dict[date, list[MemberMonth]] = {}
    for row in rows:
        months.setdefault(row.month, []).append(row)
    out = []
    for month, held in sorted(months.items()):
        calls, records = sum(r.calls for r in held), sum(r.records for r in held)
        out.append({
            "group_id": group_id, "month": month.strftime("%Y-%m"), "calls": calls, "records": records,
            "members": [{"licensee_id": r.licensee_id, "calls": r.calls, "records": r.records}
                        for r in sorted(held, key=lambda r: r.licensee_id)],
            "members_without_use": sorted(set(members) - {r.licensee_id for r in held}),
            "caps": _caps(caps, {"calls": calls, "records": records}),
        })  # fmt: skip
    return out


def _caps(caps: Mapping[str, Any] | None, used: Mapping[str, int]) -> list[dict[str, Any]]:
    """Each capped metric: its cap, the use, the share of the cap and whether the use reached it."""
    out = []
    for metric in METRICS:
        cap = int((caps or {}).get(f"{metric}_per_month") or 0)
        if cap > 0:
            share = used[metric] / cap
            out.append({"metric": metric, "cap": cap, "used": used[metric], "share": round(share, 4),
                        "reached": used[metric] >= cap})  # fmt: skip
    return out


def shared_orgs(rows: Iterable[OrgUse], group_of: Mapping[str, str | None]) -> list[dict[str, Any]]:
    """Each (month, org) seen under more than one licensee, with each licensee's use and group (a shared
    org inside one group is one company's accounts; across groups it may be one customer buying twice)."""
    held: dict[tuple[date, str], list[OrgUse]] = {}
    for row in rows:
        held.setdefault((row.month, row.org_id), []).append(row)
    out = []
    for (month, org), uses in sorted(held.items()):
        licensees = sorted({u.licensee_id for u in uses})
        if len(licensees) < 2:
            continue
        groups = {group_of.get(licensee) or licensee for licensee in licensees}
        out.append({
            "month": month.strftime("%Y-%m"), "org_id": org,
            "org_type": next((u.org_type for u in uses if u.org_type), None),
            "licensees": [{"licensee_id": u.licensee_id, "group_id": group_of.get(u.licensee_id),
                           "calls": u.calls, "records": u.records}
                          for u in sorted(uses, key=lambda u: u.licensee_id)],
            "one_group": len(groups) == 1,
        })  # fmt: skip
    return out


def csv_rows(group: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The usage report's group roll-up as CSV rows: one per month and member, and the month's total."""
    if not group:
        return []
    out = []
    for month in group["months"]:
        for member in month["members"]:
            out.append({"section": "group_member_month", "group_id": month["group_id"],
                        "month": month["month"], "licensee_id": member["licensee_id"],
                        "calls": member["calls"], "records": member["records"]})  # fmt: skip
        caps = {c["metric"]: c["cap"] for c in month["caps"]}
        out.append({"section": "group_month", "group_id": month["group_id"], "month": month["month"],
                    "licensee_id": "", "calls": month["calls"], "records": month["records"],
                    "calls_cap": caps.get("calls"), "records_cap": caps.get("records")})  # fmt: skip
    return out
