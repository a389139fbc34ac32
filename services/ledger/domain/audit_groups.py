"""The audit report's licensee-group sections (pure): the group's months rolled up over its members against
the group's caps, with the group's alerts; and the requester orgs also served by other licensees."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

from services.ledger.domain.audit_html import table, text, verdict


def group_section(facts: Mapping[str, Any]) -> str:
    """The group section: its members, each month per member and in total, its caps and its alerts."""
    group = facts.get("group")
    if not group:
        none = "This licensee belongs to no group (no agreement of the period names a parent)."
        return f"<h2>Licensee group</h2><p>{none}</p>"
    members = ", ".join(group["members"]) or "none in this period"
    caps = group["caps"]
    terms = "The group has no record of its own: its members roll up, nothing caps their sum."
    if caps:
        terms = f"The group's own record caps the members' sum at {_caps(caps)}."
    parts = [
        f'<h2>Licensee group</h2><p id="group">Group <b>{text(group["group_id"])}</b> '
        f"({text(group['name'])}); members: {text(members)}. {escape(terms)}</p>"
    ]
    rows = []
    for month in group["months"]:
        for member in month["members"]:
            rows.append([month["month"], member["licensee_id"], member["calls"], member["records"], ""])
        reached = [c for c in month["caps"] if c["reached"]]
        status = verdict(not reached, "within the group's caps", "cap reached: " + _reached(reached))
        rows.append([month["month"], ("html", "<b>group total</b>"), month["calls"], month["records"],
                     status if month["caps"] else "no caps"])  # fmt: skip
    parts.append(table(["month", "member", "calls", "records", "group caps"], rows, "no usage by the group"))
    alerts = [[a["rule"], a["severity"], a["metric"], a["window_start"], a["observed"], a["limit"],
               a["detected_at"]] for a in group["alerts"]]  # fmt: skip
    headers = ["rule", "severity", "metric", "window", "observed", "limit", "detected"]
    parts += ["<h3>The group's alerts (subject: the group)</h3>", table(headers, alerts)]
    return "".join(parts)


def _caps(caps: Mapping[str, Any]) -> str:
    metrics = [m for m in ("calls", "records") if caps.get(f"{m}_per_month")]
    found = [f"{int(caps[f'{m}_per_month']):,} {m}" for m in metrics]
    return " and ".join(found) + " a month"


def _reached(reached: list[Mapping[str, Any]]) -> str:
    return ", ".join(f"{c['used']:,} of {c['cap']:,} {c['metric']}" for c in reached)


def shared_orgs_section(facts: Mapping[str, Any]) -> str:
    """The requester orgs the licensee served in a month in which other licensees served them too."""
    rows = []
    for org in facts.get("shared_orgs") or []:
        served = "; ".join(
            f"{u['licensee_id']}{' (group ' + u['group_id'] + ')' if u['group_id'] else ''}: "
            f"{u['calls']:,} calls, {u['records']:,} records"
            for u in org["licensees"]
        )
        rows.append([org["month"], org["org_id"], org["org_type"], served,
                     verdict(org["one_group"], "one group", "several licensees")])  # fmt: skip
    return "<h2>Requester orgs served by several licensees in one month</h2>" + table(
        ["month", "org", "org type", "licensees (calls, records)", "within"], rows,
        "no requester org of this period was served by another licensee in the same month",
    )  # fmt: skip
