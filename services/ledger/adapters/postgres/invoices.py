"""Issuing invoices: one per licensee and month, once the month is closed plus a grace period.

- An invoice is never changed. Usage recorded for an invoiced month after its invoice becomes a
  `late_usage` line (a ledger adjustment referencing the original invoice) on the licensee's NEXT invoice.
- Adjustments finance posts to the ledger land as lines on the next invoice too.
- Issuing is idempotent: the invoice id is deterministic, (licensee, month) is unique, and issuing for one
  licensee is serialized by an advisory lock, so concurrent or repeated issues find the first invoice.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date, datetime, timedelta

import psycopg

from services.core.agreements import Agreement
from services.core.clock import Clock
from services.core.month import Month
from services.ledger.adapters.postgres.agreements_store import agreements_in_force
from services.ledger.adapters.postgres.db import Connect
from services.ledger.adapters.postgres.usage_licensees import first_usage_month, uninvoiced
from services.ledger.adapters.postgres.usage_sums import READ_SETTINGS, USAGE_BY_MONTH, USAGE_BY_SEGMENT
from services.ledger.domain.invoice_math import LEDGER_KIND, Draft, PostedAdjustment, assemble, due_at
from services.ledger.domain.pricing import Line, MonthCharges, Usage, coverage, late_usage_line, price_month
from services.ledger.errors import InvoiceNotDue, LedgerError, NothingToInvoice
from services.ledger.metrics import LedgerMetrics

log = logging.getLogger(__name__)

BILLED_BY_MONTH = """
    SELECT l.usage_month, sum(l.calls), sum(l.records), sum(l.amount_minor)
    FROM invoice_lines l JOIN invoices i USING (invoice_id)
    WHERE i.licensee_id = %s AND l.kind IN ('usage', 'unagreed_usage', 'late_usage') GROUP BY 1"""
UNBILLED_ADJUSTMENTS = """
    SELECT e.entry_id, e.amount_minor, e.currency, e.reason, e.reference FROM ledger_entries e
    WHERE e.licensee_id = %s AND e.kind = 'adjustment' AND e.invoice_id IS NULL
      AND NOT EXISTS (SELECT 1 FROM invoice_lines l
                      WHERE l.kind = 'adjustment' AND l.reference = 'ledger:' || e.entry_id)
    ORDER BY e.entry_id"""


class Invoicer:
    """Issues invoices against an injected clock."""

    def __init__(
        self,
        connect: Connect,
        clock: Clock,
        grace: timedelta,
        metrics: LedgerMetrics | None = None,
        billing_start: Month | None = None,
    ) -> None:
        self.connect = connect
        self.clock = clock
        self.grace = grace
        self.metrics = metrics or LedgerMetrics()
        self.billing_start = billing_start

    def issue(self, licensee_id: str, month: Month) -> tuple[str, bool]:
        """Issue (or find) the invoice of a licensee and month; return (invoice_id, created)."""
        now = self.clock.now()
        if now < due_at(month, self.grace):
            raise InvoiceNotDue(f"{month} can be invoiced from {due_at(month, self.grace).isoformat()}")
        with self.connect() as conn, conn.transaction():
            conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"tollgate.invoice:{licensee_id}",)
            )
            found = conn.execute(
                "SELECT invoice_id FROM invoices WHERE licensee_id = %s AND month = %s",
                (licensee_id, month.start.date()),
            ).fetchone()
            if found:
                return str(found[0]), False
            draft = self.draft(conn, licensee_id, month)
            if not draft.lines or _before_any_agreement(conn, licensee_id, month, draft):
                raise NothingToInvoice(f"{licensee_id} has nothing to invoice for {month}")
            _write(conn, draft, now)
        self._count(draft)
        log.info(
            "issued %s: %d lines, total %d %s",
            draft.invoice_id,
            len(draft.lines),
            draft.total_minor,
            draft.currency,
        )
        return draft.invoice_id, True

    def draft(self, conn: psycopg.Connection, licensee_id: str, month: Month) -> Draft:
        """What the invoice would say if issued now (inside the caller's transaction)."""
        agreements = agreements_in_force(conn, licensee_id)
        charges = month_charges(conn, licensee_id, month, agreements)
        late = _late_lines(conn, licensee_id, month, agreements)
        adjustments = [PostedAdjustment(*row) for row in conn.execute(UNBILLED_ADJUSTMENTS, (licensee_id,))]
        return assemble(licensee_id, charges, late, adjustments)

    def issue_due(self) -> list[str]:
        """Issue every invoice that is due and not issued yet, oldest month first; return the new ids."""
        issued: list[str] = []
        for month, licensee_id in self._due():
            try:
                invoice, created = self.issue(licensee_id, month)
            except NothingToInvoice:
                continue
            except LedgerError:
                log.exception("cannot invoice %s for %s; finance must look at it", licensee_id, month)
                continue
            if created:
                issued.append(invoice)
        return issued

    def _due(self) -> list[tuple[Month, str]]:
        last = Month.of(
            self.clock.now() - self.grace
        )  # the month whose end + grace lies ahead; ones before are due
        with self.connect() as conn:
            # From the rollup's index (usage_licensees): probes per licensee and month, not per delta.
            start = self.billing_start or first_usage_month(conn)
            if start is None:
                return []
            due: list[tuple[Month, str]] = []
            month = start
            while month < last:
                due += [(month, licensee) for licensee in uninvoiced(conn, month)]
                month = month.next()
        return due

    def _count(self, draft: Draft) -> None:
        kinds = [LEDGER_KIND[line.kind] for line in draft.lines if line.kind in LEDGER_KIND]
        for kind in set(kinds):
            self.metrics.written(kind, kinds.count(kind))
        if draft.total_minor > 0:
            self.metrics.invoiced.labels(draft.currency).inc(draft.total_minor)


def _before_any_agreement(conn: psycopg.Connection, licensee_id: str, month: Month, draft: Draft) -> bool:
    """A month that ended before the licensee's first agreement, holding only posted adjustments: those wait
    for the next invoice of a month that has charges (an invoice for year 0001 is nobody's next one)."""
    if any(line.kind != "adjustment" for line in draft.lines):
        return False
    first = min((a.effective_from for a in agreements_in_force(conn, licensee_id)), default=None)
    return first is None or month.end <= first


def month_charges(
    conn: psycopg.Connection, licensee_id: str, month: Month, agreements: Sequence[Agreement]
) -> MonthCharges:
    """Price a licensee's month from the usage stored now."""
    segments = coverage(agreements, month.start, month.end)
    params = {
        "lo": [s.start for s in segments],
        "hi": [s.end for s in segments],
        "licensee": licensee_id,
        "start": month.start,
        "end": month.end,
    }
    usage: dict[int, Usage] = {}
    unagreed = Usage()
    conn.execute(READ_SETTINGS)
    for idx, calls, records in conn.execute(USAGE_BY_SEGMENT, params):
        if idx is None:
            unagreed = Usage(int(calls), int(records))
        else:
            usage[int(idx) - 1] = Usage(int(calls), int(records))
    hint = agreements[-1].plan.currency if agreements else None
    return price_month(month, segments, usage, unagreed, hint)


def _late_lines(
    conn: psycopg.Connection, licensee_id: str, month: Month, agreements: Sequence[Agreement]
) -> list[Line]:
    invoiced: dict[date, str] = dict(
        conn.execute(
            "SELECT month, invoice_id FROM invoices WHERE licensee_id = %s AND month < %s",
            (licensee_id, month.start.date()),
        ).fetchall()
    )
    if not invoiced:
        return []
    billed = {row[0]: row[1:] for row in conn.execute(BILLED_BY_MONTH, (licensee_id,))}
    lines: list[Line] = []
    for day, calls, records in conn.execute(USAGE_BY_MONTH, (licensee_id, month.start)).fetchall():
        if day not in invoiced:
            continue
        b_calls, b_records, b_minor = billed.get(day, (0, 0, 0))
        if calls <= b_calls and records <= b_records:
            continue
        charges = month_charges(conn, licensee_id, Month.of(day), agreements)
        line = late_usage_line(charges, Usage(int(b_calls), int(b_records)), int(b_minor), invoiced[day])
        if line is not None:
            lines.append(line)
    return lines


def _write(conn: psycopg.Connection, draft: Draft, now: datetime) -> None:
    conn.execute(
        """INSERT INTO invoices (invoice_id, licensee_id, month, currency, total_minor, issued_at,
                    pricing_rules) VALUES (%s, %s, %s, %s, %s, %s, %s)""",
        (
            draft.invoice_id,
            draft.licensee_id,
            draft.month.start.date(),
            draft.currency,
            draft.total_minor,
            now,
            draft.pricing_rules,
        ),
    )
    with conn.cursor() as cursor:
        cursor.executemany(
            """INSERT INTO invoice_lines (invoice_id, line_no, kind, description, usage_month, calls, records,
               amount_minor, reference) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)""",
            [
                (
                    draft.invoice_id,
                    n,
                    line.kind,
                    line.description,
                    line.usage_month.start.date() if line.usage_month else None,
                    line.calls,
                    line.records,
                    line.amount_minor,
                    line.reference,
                )
                for n, line in enumerate(draft.lines, start=1)
            ],
        )
        cursor.executemany(
            """INSERT INTO ledger_entries (licensee_id, kind, amount_minor, currency, reference, reason,
               invoice_id, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)""",
            [
                (
                    draft.licensee_id,
                    LEDGER_KIND[line.kind],
                    line.amount_minor,
                    draft.currency,
                    f"{draft.invoice_id}#{n}",
                    line.description,
                    draft.invoice_id,
                    now,
                )
                for n, line in enumerate(draft.lines, start=1)
                if line.kind in LEDGER_KIND
            ],
        )
