"""The batch's duplicate check (migration 0014) costs the batch, not the table, on the real PostgreSQL.

ledger_append_usage's plan is made at a session's first call and kept until the usage tables are analysed
again; 0013's was a hash anti-join over a sequential scan of every usage partition when that first call met
an empty table. The tests make the plan on an empty table, fill it with autovacuum off (so no analysis
replaces the plan, as between autovacuum's runs), and read what the next batch scanned from the
transaction's own statistics.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import psycopg
import pytest
from ledger_support import LedgerDb, synthetic_billables
from psycopg import sql

from services.core.events import UsageRecorded
from services.ledger.adapters.kafka.consumer import prepare_staging, store_usage
from services.ledger.adapters.postgres.chain_store import verify
from services.ledger.domain.codec import to_row

pytestmark = pytest.mark.integration

FILLED = 20_000  # September deltas of one licensee, 400 times the small batch
MONTH = timedelta(days=31)
NO_AUTOVACUUM = "ALTER TABLE {} SET (autovacuum_enabled = off)"
PARTITIONS = "SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = 'usage_entries'::regclass"
# What the open transaction read from the usage partitions: sequential scans and the tuples they read.
SCANNED = """SELECT coalesce(sum(s.seq_scan), 0), coalesce(sum(s.seq_tup_read), 0)
    FROM pg_stat_xact_user_tables s JOIN pg_inherits i ON i.inhrelid = s.relid
    WHERE i.inhparent = 'usage_entries'::regclass"""


def rows_of(usages: list[UsageRecorded], first_offset: int) -> list[tuple[object, ...]]:
    """The consumer's rows of `usages`, at consecutive offsets of one partition."""
    return [to_row(u, "t.billable", 0, first_offset + i) for i, u in enumerate(usages)]


def large_table_after_first_plan(db: LedgerDb, session: psycopg.Connection) -> None:
    """The session's first store on the empty table, then FILLED rows stored by another, no analysis since."""
    with psycopg.connect(db.owner_url) as owner, psycopg.connect(db.app_url) as other:
        for (part,) in owner.execute(PARTITIONS).fetchall():
            owner.execute(sql.SQL(NO_AUTOVACUUM).format(sql.Identifier(part)))
        owner.commit()
        prepare_staging(session)
        with session.cursor() as cursor:
            assert store_usage(cursor, rows_of(synthetic_billables(5, "first"), 0)) == 5
        session.commit()
        prepare_staging(other)
        big = rows_of(synthetic_billables(FILLED, "big"), 1000)
        for start in range(0, FILLED, 10_000):
            with other.cursor() as cursor:
                assert store_usage(cursor, big[start : start + 10_000]) == 10_000
            other.commit()


def later(usage: UsageRecorded) -> UsageRecorded:
    """The same delta a month later: its hour and event time in October."""
    at = usage.occurred_at + MONTH if usage.occurred_at else None
    return dataclasses.replace(
        usage, period_start=usage.period_start + MONTH, period_end=usage.period_end + MONTH, occurred_at=at
    )


def store_and_scans(session: psycopg.Connection, rows: list[tuple[object, ...]]) -> tuple[int, int, int]:
    """Stored rows, sequential scans of usage partitions and tuples they read, in one committed batch."""
    with session.cursor() as cursor:
        stored = store_usage(cursor, rows)
        seq_scans, tuples = cursor.execute(SCANNED).fetchone() or (0, 0)
    session.commit()
    return stored, int(seq_scans), int(tuples)


def test_a_small_batch_on_a_large_table_scans_no_usage_partition_whatever_plan_the_session_made_first(
    ledger_db: LedgerDb,
) -> None:
    with psycopg.connect(ledger_db.app_url) as session:
        large_table_after_first_plan(ledger_db, session)
        stored, seq_scans, tuples = store_and_scans(session, rows_of(synthetic_billables(50, "small"), 100))
    assert stored == 50
    assert (seq_scans, tuples) == (0, 0), f"the duplicate check read {tuples} stored rows for a 50-row batch"


def test_re_sent_usage_ids_are_still_refused_in_their_month_and_moved_to_another_one(
    ledger_db: LedgerDb,
) -> None:
    with psycopg.connect(ledger_db.app_url) as session:
        large_table_after_first_plan(ledger_db, session)
        fresh = synthetic_billables(20, "again")
        assert store_and_scans(session, rows_of(fresh, 200))[0] == 20
        stored_id = ledger_db.scalar("SELECT usage_id FROM usage_entries WHERE licensee_id = 'big' LIMIT 1")
        moved = later(dataclasses.replace(fresh[0], usage_id=stored_id))  # stored in September
        resent = [*fresh[:10], moved, *synthetic_billables(3, "new")]
        stored, seq_scans, _ = store_and_scans(session, rows_of(resent, 300))
        found = verify(session)
    assert (stored, seq_scans) == (3, 0)
    assert ledger_db.scalar("SELECT count(*) FROM usage_entries WHERE usage_id = %s", (stored_id,)) == 1
    assert ledger_db.scalar("SELECT count(*) FROM usage_entries") == 5 + FILLED + 20 + 3
    assert found["intact"], found["first_break"]
