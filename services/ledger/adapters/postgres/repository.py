"""Reads and adjustment posts for the API and the CLI; every query is parameterized."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from services.core.month import Month
from services.ledger.adapters.postgres.agreements_store import agreements_in_force
from services.ledger.adapters.postgres.usage_sums import APP_MONTHS, GOVERNMENT, READ_SETTINGS
from services.ledger.domain.params import Adjustment, ascii_int
from services.ledger.domain.reports import AppMonth, OrgUse, first_notices, usage_report
from services.ledger.errors import BadParameter, IdempotencyConflict

# Open ends of a range: PostgreSQL's own infinities keep the SQL the same with or without bounds.
_FAR = ("-infinity", "infinity")

LEDGER = """SELECT entry_id, licensee_id, kind, amount_minor, currency, reference, reason, invoice_id,
        created_at
    FROM ledger_entries
    WHERE licensee_id = %s AND created_at >= %s::timestamptz AND created_at < %s::timestamptz
    ORDER BY created_at, entry_id LIMIT %s"""
# A concurrent post with the same key may commit between our lookup and this INSERT: DO NOTHING then, and
# the caller reads the row it committed (READ COMMITTED: the next statement sees it).
INSERT_ADJUSTMENT = """INSERT INTO ledger_entries (licensee_id, kind, amount_minor, currency, reference,
        reason, idempotency_key, created_at) VALUES (%s, 'adjustment', %s, %s, %s, %s, %s, %s)
    ON CONFLICT ON CONSTRAINT ledger_entries_idempotent DO NOTHING RETURNING *"""
BY_KEY = "SELECT * FROM ledger_entries WHERE licensee_id = %s AND idempotency_key = %s"


def _bounds(start: datetime | None, end: datetime | None) -> tuple[Any, Any]:
    return (start if start is not None else _FAR[0], end if end is not None else _FAR[1])


def ledger_entries(
    conn: psycopg.Connection, licensee_id: str, start: datetime | None, end: datetime | None, limit: int
) -> dict[str, Any]:
    """Entries created in `[start, end)`, oldest first; `truncated` when more than `limit` matched."""
    with conn.cursor(row_factory=dict_row) as cursor:
        rows = cursor.execute(LEDGER, (licensee_id, *_bounds(start, end), limit + 1)).fetchall()
    return {"licensee_id": licensee_id, "entries": rows[:limit], "truncated": len(rows) > limit}


def invoice(conn: psycopg.Connection, licensee_id: str, month: Month) -> dict[str, Any] | None:
    """An issued invoice with its lines, or None."""
    with conn.cursor(row_factory=dict_row) as cursor:
        head = cursor.execute(
            """SELECT invoice_id, licensee_id, to_char(month, 'YYYY-MM') AS month, currency, total_minor,
               issued_at, pricing_rules FROM invoices WHERE licensee_id = %s AND month = %s""",
            (licensee_id, month.start.date()),
        ).fetchone()
        if head is None:
            return None
        lines = cursor.execute(
            """SELECT line_no, kind, description, to_char(usage_month, 'YYYY-MM') AS usage_month, calls,
               records, amount_minor, reference FROM invoice_lines WHERE invoice_id = %s ORDER BY line_no""",
            (head["invoice_id"],),
        ).fetchall()
    return {**head, "lines": lines}


def invoices_for_month(conn: psycopg.Connection, month: Month) -> list[str]:
    """The licensees invoiced for a month."""
    rows = conn.execute("SELECT licensee_id FROM invoices WHERE month = %s ORDER BY 1", (month.start.date(),))
    return [row[0] for row in rows]


def report(
    conn: psycopg.Connection, licensee_id: str, start: datetime | None, end: datetime | None
) -> dict[str, Any]:
    """The auditor's usage report for `[start, end)` of event time buckets."""
    bounds = _bounds(start, end)
    agreements = agreements_in_force(conn, licensee_id)
    conn.execute(READ_SETTINGS)
    months = [
        AppMonth(a, m, int(c), int(r)) for a, m, c, r in conn.execute(APP_MONTHS, (licensee_id, *bounds))
    ]
    notices = first_notices(agreements)
    rows = conn.execute(GOVERNMENT, (list(notices), list(notices.values()), licensee_id, *bounds))
    orgs = [OrgUse(o, f, la, int(c), int(r), int(ca), int(ra)) for o, f, la, c, r, ca, ra in rows]
    document = usage_report(licensee_id, agreements, months, orgs)
    return {**document, "from": start, "to": end}


def post_adjustment(
    conn: psycopg.Connection, licensee_id: str, adjustment: Adjustment, key: str | None, now: datetime
) -> tuple[dict[str, Any], bool]:
    """Append an adjustment entry (inside the caller's transaction); return (entry, created).

    A key seen before returns its entry, or raises IdempotencyConflict when it posted something else."""
    with conn.cursor(row_factory=dict_row) as cursor:
        if key is not None and (found := cursor.execute(BY_KEY, (licensee_id, key)).fetchone()):
            return _replayed(found, adjustment, key), False
        currency = _currency(conn, licensee_id, adjustment)
        values = (licensee_id, adjustment.amount_minor, currency, adjustment.reference, adjustment.reason)
        entry = cursor.execute(INSERT_ADJUSTMENT, (*values, key, now)).fetchone()
        if entry is None and key is not None:  # a concurrent request with this key committed first
            entry = cursor.execute(BY_KEY, (licensee_id, key)).fetchone()
            assert entry is not None  # noqa: S101 - the conflict was this row
            return _replayed(entry, adjustment, key), False
    assert entry is not None  # noqa: S101 - without a key nothing conflicts: INSERT ... RETURNING returns it
    return _public(entry), True


def _replayed(entry: dict[str, Any], adjustment: Adjustment, key: str) -> dict[str, Any]:
    """The stored entry of a retry; a different adjustment under the same key is refused."""
    if not adjustment.matches(entry):
        raise IdempotencyConflict(key)
    return _public(entry)


def _currency(conn: psycopg.Connection, licensee_id: str, adjustment: Adjustment) -> str:
    """The reference must be this licensee's invoice or ledger entry; the currency must match it."""
    reference = adjustment.reference
    row = conn.execute(
        "SELECT currency FROM invoices WHERE licensee_id = %s AND invoice_id = %s", (licensee_id, reference)
    ).fetchone()
    entry_id = ascii_int(reference) if len(reference) < 19 else None  # a bigint has at most 19 digits
    if row is None and entry_id is not None:
        row = conn.execute(
            "SELECT currency FROM ledger_entries WHERE licensee_id = %s AND entry_id = %s",
            (licensee_id, entry_id),
        ).fetchone()
    if row is None:
        raise BadParameter("reference", "must be an invoice id or ledger entry id of this licensee")
    if adjustment.currency is not None and adjustment.currency != row[0]:
        raise BadParameter("currency", f"must be {row[0]}, the currency of the entry corrected")
    return str(row[0])


def _public(entry: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in entry.items() if key != "idempotency_key"}
