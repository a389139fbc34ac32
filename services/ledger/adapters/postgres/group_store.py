"""Licensee groups read from the ledger: who belongs to a licensee's group in a period, the group's record,
its members' months and its alerts; and the requester orgs shared with other licensees.

Membership comes from the agreements table (migration 0011): an account whose agreement overlapping the
period names the group in `parent_id`. Usage counts each delta in its UTC hour, as the usage report does.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg

from services.core.agreements import parse_agreement
from services.ledger.adapters.postgres import alerts_store, repository
from services.ledger.domain.group_report import MemberMonth, OrgUse, rollup, shared_orgs

MAX_ALERTS = 5000
_FAR = (datetime(1, 1, 1, tzinfo=UTC), datetime(9999, 12, 31, tzinfo=UTC))  # an open bound of a report
# The licensee's own versions in the period, latest last: its parent, or whether it is a group itself.
OWN = """SELECT parent_id, kind FROM agreements WHERE licensee_id = %(id)s
      AND effective_from < %(end)s AND (effective_to IS NULL OR effective_to > %(start)s)
    ORDER BY effective_from, agreement_version"""
MEMBERS = """SELECT DISTINCT licensee_id FROM agreements WHERE parent_id = %(id)s
      AND effective_from < %(end)s AND (effective_to IS NULL OR effective_to > %(start)s) ORDER BY 1"""
RECORD = """SELECT document FROM agreements WHERE licensee_id = %(id)s AND kind = 'group'
      AND effective_from < %(end)s AND (effective_to IS NULL OR effective_to > %(start)s)
    ORDER BY effective_from DESC, agreement_version DESC LIMIT 1"""
# From usage_rollup (migration 0012), the stored rows' sums per bucket key: a key holds one bucket start,
# so per month of bucket start these are the rows' sums exactly, read per key instead of per delta.
MONTHS = """SELECT licensee_id, (date_trunc('month', period_start, 'UTC') AT TIME ZONE 'UTC')::date,
        sum(calls), sum(records)
    FROM usage_rollup WHERE licensee_id = ANY(%(ids)s)
      AND period_start >= %(start)s AND period_start < %(end)s
    GROUP BY 1, 2"""
# The orgs the licensees in scope served, with each month they did (the rollup's unique index alone).
SERVED = """SELECT DISTINCT org_id, date_trunc('month', period_start, 'UTC') FROM usage_rollup
    WHERE licensee_id = ANY(%(ids)s) AND period_start >= %(start)s AND period_start < %(end)s
      AND org_id IS NOT NULL ORDER BY 1, 2"""
# Every licensee that served those orgs in those months (from the rollup, as MONTHS): each (org, month) an
# index range of usage_rollup_by_org (migration 0016), not a scan of every licensee's rows of the period.
# The pairs come as arrays, so the planner knows how few they are (estimated from a DISTINCT, a small
# licensee's 10 looked like 300 and got a sequential scan).
SHARED = """SELECT (s.m AT TIME ZONE 'UTC')::date, s.org_id, max(u.org_type), u.licensee_id, sum(u.calls),
        sum(u.records)
    FROM unnest(%(orgs)s::text[], %(months)s::timestamptz[]) AS s (org_id, m)
    CROSS JOIN LATERAL (SELECT u.licensee_id, u.org_type, u.calls, u.records FROM usage_rollup u
        WHERE u.org_id = s.org_id AND u.period_start >= greatest(s.m, %(start)s)
          AND u.period_start < least((s.m AT TIME ZONE 'UTC' + interval '1 month') AT TIME ZONE 'UTC',
                                     %(end)s)) AS u
    GROUP BY 1, 2, 4"""
PARENTS = """SELECT DISTINCT ON (licensee_id) licensee_id, parent_id FROM agreements
    WHERE licensee_id = ANY(%(ids)s)
      AND effective_from < %(end)s AND (effective_to IS NULL OR effective_to > %(start)s)
    ORDER BY licensee_id, effective_from DESC, agreement_version DESC"""


def group_id_of(conn: psycopg.Connection, licensee_id: str, start: datetime, end: datetime) -> str | None:
    """The licensee's group in the period: its parent, or itself when it is a group or has members."""
    own = conn.execute(OWN, {"id": licensee_id, "start": start, "end": end}).fetchall()
    if own and own[-1][0] is not None:
        return str(own[-1][0])
    if any(kind == "group" for _, kind in own):
        return licensee_id
    members = conn.execute(MEMBERS, {"id": licensee_id, "start": start, "end": end}).fetchone()
    return licensee_id if members else None


def group_facts(
    conn: psycopg.Connection, licensee_id: str, start: datetime, end: datetime
) -> dict[str, Any] | None:
    """The roll-up of the licensee's group over `[start, end)`, or None when it belongs to none."""
    group_id = group_id_of(conn, licensee_id, start, end)
    if group_id is None:
        return None
    bounds = {"id": group_id, "start": start, "end": end}
    members = [str(row[0]) for row in conn.execute(MEMBERS, bounds)]
    found = conn.execute(RECORD, bounds).fetchone()
    record = parse_agreement(found[0]) if found else None
    caps = dict(record.raw["limits"]) if record else None
    ids = [*members, group_id] if record is None else members  # a parent that is a licensee counts too
    rows = conn.execute(MONTHS, {**bounds, "ids": ids})
    months = [MemberMonth(str(m), month, int(c), int(r)) for m, month, c, r in rows]
    alerts = alerts_store.alerts(conn, group_id, start, end, MAX_ALERTS) if record else {"alerts": []}
    return {
        "group_id": group_id, "name": record.name if record else group_id, "has_record": record is not None,
        "members": members, "caps": caps, "months": rollup(group_id, members, caps, months),
        "alerts": alerts["alerts"],
    }  # fmt: skip


def shared_org_facts(
    conn: psycopg.Connection, licensee_ids: list[str], start: datetime, end: datetime
) -> list[dict[str, Any]]:
    """Requester orgs the licensees served in a month in which other licensees served them too."""
    bounds = {"ids": licensee_ids, "start": start, "end": end}
    uses = [OrgUse(month, str(org), kind, str(lic), int(c), int(r))
            for month, org, kind, lic, c, r in conn.execute(SHARED, served(conn, bounds))]  # fmt: skip
    everyone = sorted({u.licensee_id for u in uses})
    parents: dict[str, str | None] = {}
    if everyone:
        parents = {str(lic): parent for lic, parent in conn.execute(PARENTS, {**bounds, "ids": everyone})}
    return shared_orgs(uses, parents)


def served(conn: psycopg.Connection, bounds: dict[str, Any]) -> dict[str, Any]:
    """`bounds` with the orgs its licensees served and the month of each, as SHARED takes them."""
    pairs = conn.execute(SERVED, bounds).fetchall()
    return {**bounds, "orgs": [org for org, _ in pairs], "months": [month for _, month in pairs]}


def scope_of(group: dict[str, Any] | None, licensee_id: str) -> list[str]:
    """Whose orgs a report lists: a group's report covers its members, anyone else's its own."""
    if group is not None and group["group_id"] == licensee_id:
        return [*group["members"], licensee_id]
    return [licensee_id]


def report_with_group(
    conn: psycopg.Connection, licensee_id: str, start: datetime | None, end: datetime | None
) -> dict[str, Any]:
    """The usage report (repository.report) with its group's roll-up under `group` (None: no group)."""
    found = repository.report(conn, licensee_id, start, end)
    return {**found, "group": group_facts(conn, licensee_id, start or _FAR[0], end or _FAR[1])}
