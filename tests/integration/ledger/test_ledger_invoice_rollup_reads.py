"""The invoice run finds its licensees and its first month in the rollup (migration 0012), not the deltas: on
PostgreSQL every invoice's usage lines sum to the raw deltas of their month (per-call rows stamped past
their hour and across the month's end, late usage of an invoiced month, a licensee whose only usage came
late, rows of the run's own open transaction), and the rows the run reads from `usage_entries` stay the
same when a month gets twice the deltas."""

from __future__ import annotations

import random
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from ledger_support import LedgerDb
from test_ledger_audit_rollup_reads import (
    SEPT,
    START,
    agreement,
    deltas,
    insert,
    rows_read_twice,
    sums_by_month,
)

from services.core.agreements import parse_agreement
from services.core.clock import FixedClock
from services.core.events import UsageRecorded
from services.core.month import Month
from services.ledger.adapters.postgres import usage_licensees
from services.ledger.adapters.postgres.agreements_store import insert_agreement
from services.ledger.adapters.postgres.db import Connect, url_connector
from services.ledger.adapters.postgres.invoices import Invoicer

pytestmark = pytest.mark.integration

GRACE = timedelta(hours=72)
OCT_RUN, DEC_RUN = datetime(2026, 10, 5, tzinfo=UTC), datetime(2026, 12, 5, tzinfo=UTC)
# Calls and records of every usage line, per licensee and month of usage, over all invoices issued.
BILLED = """SELECT i.licensee_id, l.usage_month, sum(l.calls), sum(l.records)
    FROM invoice_lines l JOIN invoices i USING (invoice_id)
    WHERE l.kind IN ('usage', 'unagreed_usage', 'late_usage') GROUP BY 1, 2"""


def billed(conn: psycopg.Connection) -> dict[tuple[str, Month], tuple[int, int]]:
    """What the invoices say each licensee used in each month."""
    rows = conn.execute(BILLED).fetchall()
    return {(lic, Month(m.year, m.month)): (int(c), int(r)) for lic, m, c, r in rows if c or r}


def truth(usages: list[UsageRecorded], months: list[Month]) -> dict[tuple[str, Month], tuple[int, int]]:
    """The raw deltas' sums per licensee and month of bucket start, for the months given."""
    found = {}
    for licensee in sorted({u.licensee_id for u in usages}):
        for month, sums in sums_by_month(usages, licensee).items():
            if month in months:
                found[(licensee, month)] = sums
    return found


def borrowing(conn: psycopg.Connection) -> Connect:
    """A connector that hands out `conn` itself, open transaction and all (issue() nests a savepoint)."""

    @contextmanager
    def borrowed() -> Iterator[psycopg.Connection]:
        yield conn

    return borrowed


def raw(query: str) -> str:
    """The same query over the deltas themselves."""
    return query.replace("usage_rollup", "usage_entries")


@pytest.fixture
def stored(ledger_db: LedgerDb) -> list[UsageRecorded]:
    """Both licensees' deltas (per-call rows among them) and lic-a's agreement; nothing invoiced yet."""
    usages = deltas(random.Random(31), 1500)  # noqa: S311 - reproducible test data
    with psycopg.connect(ledger_db.owner_url) as conn:
        insert(conn, usages)
        insert_agreement(conn, parse_agreement(agreement("lic-a")))
    return usages


def test_the_invoice_run_bills_every_licensee_each_month_exactly_as_the_raw_deltas_sum(
    ledger_db: LedgerDb, stored: list[UsageRecorded]
) -> None:
    Invoicer(url_connector(ledger_db.app_url), FixedClock(OCT_RUN), GRACE).issue_due()
    late = [d for d in deltas(random.Random(32), 300) if Month.of(d.period_start) == SEPT]  # noqa: S311
    only_late = [replace(d, usage_id=str(uuid.uuid4()), licensee_id="lic-c") for d in late[:20]]
    with psycopg.connect(ledger_db.owner_url) as conn:  # after September's invoices: late usage
        insert(conn, late + only_late)
    Invoicer(url_connector(ledger_db.app_url), FixedClock(DEC_RUN), GRACE).issue_due()
    every = stored + late + only_late
    with psycopg.connect(ledger_db.app_url) as conn:
        assert billed(conn) == truth(every, [Month(2026, 8), SEPT, Month(2026, 10)])
        late_lines = conn.execute("SELECT count(*) FROM invoice_lines WHERE kind = 'late_usage'").fetchone()
        months = dict(conn.execute("SELECT licensee_id, array_agg(month ORDER BY month) FROM invoices "
                                   "GROUP BY 1"))  # fmt: skip
    assert late_lines is not None and late_lines[0] >= 1  # lic-a's and lic-b's late September
    assert [str(m)[:7] for m in months["lic-c"]] == ["2026-09"]  # its own September invoice, issued late
    assert len(months["lic-a"]) == 4 and len(months["lic-b"]) == 3  # lic-a's agreement bills November too


# The candidates as a plain scan of the deltas would find them: an oracle that shares no SQL with
# usage_licensees, so a slip in its index walk cannot agree with itself.
PLAIN_CANDIDATES = """SELECT licensee_id FROM usage_entries
        WHERE period_start >= %(start)s AND period_start < %(end)s
    UNION SELECT licensee_id FROM agreements WHERE effective_from < %(end)s
        AND (effective_to IS NULL OR effective_to > %(start)s) AND kind IS DISTINCT FROM 'group'
    EXCEPT SELECT licensee_id FROM invoices WHERE month = %(month)s ORDER BY 1"""


def test_the_run_finds_the_same_licensees_and_first_month_as_the_raw_deltas_give(
    ledger_db: LedgerDb, stored: list[UsageRecorded]
) -> None:
    with psycopg.connect(ledger_db.app_url) as conn:
        first = conn.execute(raw(usage_licensees.FIRST_BUCKET)).fetchone()
        assert first is not None and usage_licensees.first_usage_month(conn) == Month.of(first[0])
        assert Month.of(first[0]) == Month.of(min(d.period_start for d in stored)) == Month.of(START)
        for month in (Month(2026, 8), SEPT, Month(2026, 10), Month(2026, 11)):
            values = {"start": month.start, "end": month.end, "month": month.start.date()}
            rows = conn.execute(usage_licensees.CANDIDATES, values).fetchall()
            assert rows == conn.execute(raw(usage_licensees.CANDIDATES), values).fetchall(), month
            assert rows == conn.execute(PLAIN_CANDIDATES, values).fetchall(), month
        plain_first = conn.execute("SELECT min(period_start) FROM usage_entries").fetchone()
        assert plain_first is not None and plain_first[0] == first[0]
        assert usage_licensees.uninvoiced(conn, Month(2026, 11)) == ["lic-a"]  # its agreement, no usage
        assert usage_licensees.uninvoiced(conn, SEPT) == ["lic-a", "lic-b"]


def test_usage_of_the_runs_own_open_transaction_is_due_and_billed_already(
    ledger_db: LedgerDb, stored: list[UsageRecorded]
) -> None:
    more = [replace(d, licensee_id="lic-d") for d in deltas(random.Random(33), 200)]  # noqa: S311
    with psycopg.connect(ledger_db.owner_url) as conn:
        insert(conn, more)  # not committed: the rollup's statement trigger ran in this transaction
        invoicer = Invoicer(borrowing(conn), FixedClock(OCT_RUN), GRACE)
        assert usage_licensees.first_usage_month(conn) == Month.of(START)
        invoicer.issue_due()
        mine = {key: sums for key, sums in billed(conn).items() if key[0] == "lic-d"}
        assert mine == truth(more, [Month(2026, 8), SEPT])
        conn.rollback()
        assert ("lic-d" not in usage_licensees.uninvoiced(conn, SEPT)) and not billed(conn)


def run(conn: psycopg.Connection) -> list[str]:
    """The December invoice run on `conn`, inside its open transaction."""
    return Invoicer(borrowing(conn), FixedClock(DEC_RUN), GRACE).issue_due()


def test_the_invoice_run_reads_no_more_deltas_when_a_month_has_twice_as_many(ledger_db: LedgerDb) -> None:
    found, _ = rows_read_twice(ledger_db, 34, {"run": run})
    # Neither the candidates, the first month nor the aligned keys' sums read a row (the raw CANDIDATES and
    # min(period_start) of 680107e read 1,602 and then 3,202: an index entry and a heap tuple per delta).
    assert found == [{"run": 0}, {"run": 0}]
    with psycopg.connect(ledger_db.owner_url) as conn:  # each run was rolled back: every invoice still due
        due = Invoicer(borrowing(conn), FixedClock(DEC_RUN), GRACE)._due()
    # August to November for lic-a (its agreement bills November), to October for lic-b.
    assert Counter(licensee for _, licensee in due) == {"lic-a": 4, "lic-b": 3}
