"""The facts of the audit evidence report, read from the ledger; the judgements on them are pure functions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from services.core.agreements import parse_agreement
from services.core.month import Month
from services.ledger.adapters.postgres import alerts_store, chain_store, group_store, repository
from services.ledger.adapters.postgres.exposure_store import period_exposure
from services.ledger.adapters.postgres.invoices import BILLED_BY_MONTH
from services.ledger.domain.catalogue import Catalogue, default_catalogue

MAX_ALERTS = 5000  # a report lists at most this many; GET /v1/licensees/{id}/alerts pages through more
# A group's own record is no licensee's terms: the report's group section shows its caps.
VERSIONS = """SELECT agreement_version, loaded_at, document FROM agreements
    WHERE licensee_id = %s AND effective_from < %s::timestamptz
      AND (effective_to IS NULL OR effective_to > %s::timestamptz) AND kind IS DISTINCT FROM 'group'
    ORDER BY effective_from, agreement_version"""
INVOICES = """SELECT to_char(month, 'YYYY-MM') FROM invoices
    WHERE licensee_id = %s AND month >= %s::date AND month < %s::date ORDER BY month"""
ADJUSTMENTS = """SELECT entry_id, amount_minor, currency, reference, reason, invoice_id, created_at
    FROM ledger_entries WHERE licensee_id = %s AND kind = 'adjustment'
      AND created_at >= %s::timestamptz AND created_at < %s::timestamptz ORDER BY created_at, entry_id"""


def audit_facts(
    conn: psycopg.Connection,
    licensee_id: str,
    start: datetime,
    end: datetime,
    catalogue: Catalogue | None = None,
) -> dict[str, Any]:
    """Everything the audit report shows for `[start, end)`; exposure on `catalogue` (default: shipped)."""
    usage = repository.report(conn, licensee_id, start, end)
    agreements = agreement_versions(conn, licensee_id, start, end)
    invoices = [repository.invoice(conn, licensee_id, Month.parse(m)) for (m,) in
                conn.execute(INVOICES, (licensee_id, start.date(), end.date()))]  # fmt: skip
    with conn.cursor(row_factory=dict_row) as cursor:
        adjustments = cursor.execute(ADJUSTMENTS, (licensee_id, start, end)).fetchall()
    billed = {row[0]: (int(row[1]), int(row[2])) for row in conn.execute(BILLED_BY_MONTH, (licensee_id,))}
    government_use = agreements[-1]["government_use"] if agreements else None
    alerts = alerts_store.alerts(conn, licensee_id, start, end, MAX_ALERTS)
    group = group_store.group_facts(conn, licensee_id, start, end)
    shared = group_store.shared_org_facts(conn, group_store.scope_of(group, licensee_id), start, end)
    return {
        "licensee_id": licensee_id, "from": start, "to": end,
        "name": agreements[-1]["name"] if agreements else (group or {}).get("name", licensee_id),
        "agreements": agreements, "usage": usage,
        "government": [{**org, "rule_kept": rule_kept(government_use, org)} for org in usage["government"]],
        "alerts": alerts["alerts"], "alerts_truncated": alerts["truncated"],
        "invoices": [i for i in invoices if i is not None], "adjustments": adjustments,
        "cross_check": cross_check(usage["apps"], billed),
        "chain_heads": chain_store.heads(conn, licensee_id),
        "exposure": period_exposure(conn, licensee_id, start, end, catalogue or default_catalogue()),
        "group": group, "shared_orgs": shared,
    }  # fmt: skip


def agreement_versions(
    conn: psycopg.Connection, licensee_id: str, start: datetime, end: datetime
) -> list[dict[str, Any]]:
    """Every loaded version of the agreements overlapping the period; the last of each start is in force."""
    rows = conn.execute(VERSIONS, (licensee_id, end, start)).fetchall()
    latest = {parse_agreement(doc).effective_from: version for version, _, doc in rows}
    out = []
    for version, loaded_at, document in rows:
        agreement = parse_agreement(document)
        in_force = latest[agreement.effective_from] == version
        out.append({
            "version": version, "loaded_at": loaded_at, "in_force": in_force,
            "effective_from": agreement.effective_from, "effective_to": agreement.effective_to,
            "name": agreement.name, "plan": document["plan"], "limits": document["limits"],
            "government_use": agreement.government_use, "notices": document["government_notices"],
            "apps": document["apps"],
        })  # fmt: skip
    return out


def rule_kept(government_use: str | None, org: Mapping[str, Any]) -> bool:
    """Whether an org's access kept the agreement's government rule (the org got data, so it was used)."""
    if government_use == "allowed":
        return True
    if government_use == "notice_required":
        return int(org["calls_before_notice"]) == 0
    return False  # prohibited, or no agreement at all


def cross_check(
    app_months: Iterable[Mapping[str, Any]], billed: Mapping[date, tuple[int, int]]
) -> list[dict[str, Any]]:
    """Per month: metered calls and records against those invoiced for that month (late lines included)."""
    metered: dict[str, list[int]] = {}
    for row in app_months:
        totals = metered.setdefault(row["month"], [0, 0])
        totals[0] += int(row["calls"])
        totals[1] += int(row["records"])
    out = []
    for month, (calls, records) in sorted(metered.items()):
        invoiced = billed.get(Month.parse(month).start.date())
        status = "not invoiced yet" if invoiced is None else (
            "matches" if invoiced == (calls, records) else "DIFFERS")  # fmt: skip
        out.append({"month": month, "calls": calls, "records": records,
                    "invoiced_calls": invoiced[0] if invoiced else None,
                    "invoiced_records": invoiced[1] if invoiced else None, "status": status})  # fmt: skip
    return out
