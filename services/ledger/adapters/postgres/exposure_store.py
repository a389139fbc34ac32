"""Unbilled exposure from the ledger: a month's metered usage and what was billed for it, read from
PostgreSQL and handed to the pure `exposure` module.

Billed for a month = the fee, usage and late-usage lines carrying that usage month, on the month's invoice
and on later invoices (usage recorded after an invoice goes on the next one). Posted adjustments are
corrections of ledger entries, not of a month, and are not counted. Before the month's invoice is issued,
the month's usage is priced now under the agreements in force, as its invoice would be.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg

from services.core.month import Month
from services.ledger.adapters.postgres.agreements_store import agreements_in_force
from services.ledger.adapters.postgres.invoices import month_charges
from services.ledger.domain import exposure
from services.ledger.domain.catalogue import Catalogue
from services.ledger.domain.pricing import Usage

# Read from usage_rollup (migration 0012), like the invoice: its trigger adds every inserted row's sums in
# the inserting transaction, and a month's detach takes its keys out with its rows, so the rollup holds
# exactly the stored rows. A key holds one bucket (period_start), so a month of bucket starts takes each key
# whole and these are the rows' sums to the call, read per bucket key instead of per flushed delta.
USAGE = """SELECT coalesce(sum(calls), 0), coalesce(sum(records), 0) FROM usage_rollup
    WHERE licensee_id = %s AND period_start >= %s AND period_start < %s"""
INVOICED = """SELECT i.invoice_id, i.currency, i.month = %(month)s, coalesce(sum(l.amount_minor), 0)
    FROM invoices i LEFT JOIN invoice_lines l ON l.invoice_id = i.invoice_id AND l.usage_month = %(month)s
        AND l.kind IN ('fee', 'usage', 'unagreed_usage', 'late_usage')
    WHERE i.licensee_id = %(licensee)s AND (i.month = %(month)s OR l.line_no IS NOT NULL)
    GROUP BY i.invoice_id, i.currency, i.month ORDER BY i.month"""
KNOWN = """SELECT EXISTS (SELECT 1 FROM agreements WHERE licensee_id = %(l)s)
    OR EXISTS (SELECT 1 FROM usage_rollup WHERE licensee_id = %(l)s)
    OR EXISTS (SELECT 1 FROM invoices WHERE licensee_id = %(l)s)"""
# The months of a period that have usage or an invoice: the others have nothing to compare. Months with
# usage by skipping through the rollup's (licensee, period_start) index: from each month found, the first
# bucket at or after the next month's start, so one probe per month with usage whatever the buckets.
MONTHS = """WITH RECURSIVE used (month) AS (
        SELECT date_trunc('month', min(period_start), 'UTC') FROM usage_rollup
        WHERE licensee_id = %(l)s AND period_start >= %(lo)s AND period_start < %(hi)s
        UNION ALL
        SELECT (SELECT date_trunc('month', min(r.period_start), 'UTC') FROM usage_rollup r
                WHERE r.licensee_id = %(l)s AND r.period_start < %(hi)s AND r.period_start
                      >= ((used.month AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC')
        FROM used WHERE used.month IS NOT NULL)
    SELECT (month AT TIME ZONE 'UTC')::date FROM used WHERE month IS NOT NULL
    UNION SELECT month FROM invoices WHERE licensee_id = %(l)s AND month >= %(lo_day)s
      AND month::timestamp < (%(hi)s::timestamptz AT TIME ZONE 'UTC')
    ORDER BY 1"""


def known(conn: psycopg.Connection, licensee_id: str) -> bool:
    """Whether the ledger holds any agreement, usage or invoice of the licensee."""
    row = conn.execute(KNOWN, {"l": licensee_id}).fetchone()
    return bool(row and row[0])


def month_exposure(
    conn: psycopg.Connection, licensee_id: str, month: Month, catalogue: Catalogue
) -> dict[str, Any]:
    """The exposure document of one licensee and month."""
    row = conn.execute(USAGE, (licensee_id, month.start, month.end)).fetchone()
    usage = Usage(int(row[0]), int(row[1])) if row else Usage()
    found = exposure.assess(licensee_id, month, usage, catalogue, billed(conn, licensee_id, month))
    return exposure.document(found)


def billed(conn: psycopg.Connection, licensee_id: str, month: Month) -> exposure.Billed:
    """What was billed for the month's usage: its invoices' lines, or priced now if not invoiced yet."""
    rows = conn.execute(INVOICED, {"licensee": licensee_id, "month": month.start.date()}).fetchall()
    own = [row for row in rows if row[2]]
    if own:
        amount = sum(int(row[3]) for row in rows)
        return exposure.Billed(exposure.FROM_INVOICE, amount, own[0][1], tuple(row[0] for row in rows))
    charges = month_charges(conn, licensee_id, month, agreements_in_force(conn, licensee_id))
    amount = sum(line.amount_minor for line in charges.lines)
    return exposure.Billed(exposure.PRICED_NOW, amount, charges.currency)


def period_exposure(
    conn: psycopg.Connection, licensee_id: str, start: datetime, end: datetime, catalogue: Catalogue
) -> list[dict[str, Any]]:
    """The exposure of each whole calendar month overlapping `[start, end)` that has usage or an invoice."""
    first = Month.of(start).start
    bounds = {"l": licensee_id, "lo": first, "hi": end, "lo_day": first.date()}
    months = [Month.of(day) for (day,) in conn.execute(MONTHS, bounds)]
    return [month_exposure(conn, licensee_id, month, catalogue) for month in months]
