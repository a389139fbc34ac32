"""The shared-org list reads usage_rollup by org (migration 0016): on PostgreSQL the rows it reads stay the
same when other licensees, serving other orgs, fill the month, and so do its answers; and the rollup's
updates stay HOT with the index."""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest
from ledger_support import LedgerDb
from test_ledger_audit_rollup_reads import END, START, deltas, insert

from services.core.events import UsageRecorded
from services.ledger.adapters.postgres import group_store

pytestmark = pytest.mark.integration

# Tuples read from usage_rollup and its indexes in this transaction (sequential and index scans alike).
ROLLUP_READ = """SELECT coalesce(sum(pg_stat_get_xact_tuples_returned(o)
                                  + pg_stat_get_xact_tuples_fetched(o)), 0)
    FROM (SELECT 'usage_rollup'::regclass::oid UNION ALL
          SELECT indexrelid FROM pg_index WHERE indrelid = 'usage_rollup'::regclass) AS r (o)"""
UPDATES = """SELECT pg_stat_get_xact_tuples_updated('usage_rollup'::regclass),
                    pg_stat_get_xact_tuples_hot_updated('usage_rollup'::regclass)"""


def delta(licensee: str, app: str, hour: datetime, org: str, calls: int, n: int) -> UsageRecorded:
    """An aggregated delta of a commercial org, inside its hour."""
    return UsageRecorded(str(uuid.uuid4()), licensee, app, hour, hour + timedelta(hours=1), calls, 10 * calls,
                         org_id=org, org_type="commercial", first_event_at=hour,
                         last_event_at=hour + timedelta(minutes=5),
                         reference=("api-calls", 0, n, n + calls))  # fmt: skip


def others(count: int) -> list[UsageRecorded]:
    """Aligned deltas of `count` other licensees, each with orgs of its own, over the same period."""
    return [delta(f"other-{n:02d}", f"app-{a}", START + timedelta(hours=h), f"other-{n:02d}-org-{a}", 3, h)
            for n in range(count) for h in range(0, 24 * 50, 7) for a in range(3)]  # fmt: skip


def rollup_rows_read(conn: psycopg.Connection) -> int:
    """Rollup tuples the shared-org list of lic-a made PostgreSQL read, its answer discarded."""
    conn.execute("SET LOCAL max_parallel_workers_per_gather = 0")  # the leader's counters see every read
    before = conn.execute(ROLLUP_READ).fetchone()
    group_store.shared_org_facts(conn, ["lic-a"], START, END)
    after = conn.execute(ROLLUP_READ).fetchone()
    conn.rollback()
    assert before is not None and after is not None
    return int(after[0]) - int(before[0])


def shared(conn: psycopg.Connection) -> list[dict[str, Any]]:
    """lic-a's shared orgs, as the audit report lists them."""
    found = group_store.shared_org_facts(conn, ["lic-a"], START, END)
    conn.rollback()
    return found


def analysed(conn: psycopg.Connection) -> None:
    """Commit, and fresh statistics of the rollup, as autovacuum would give a month this full."""
    conn.commit()
    conn.execute("ANALYZE usage_rollup")
    conn.commit()


def test_the_shared_org_list_reads_no_more_rollup_rows_when_other_licensees_fill_the_month(
    ledger_db: LedgerDb,
) -> None:
    rng = random.Random(16)  # noqa: S311 - reproducible test data
    with psycopg.connect(ledger_db.owner_url) as conn:
        insert(conn, deltas(rng, 600, aligned=True))
        insert(conn, others(2))
        analysed(conn)
        alone = rollup_rows_read(conn)
        expected = shared(conn)
        insert(conn, others(20))  # 10,320 rollup rows of orgs nobody else serves
        analysed(conn)
        assert rollup_rows_read(conn) <= alone  # fewer when the planner finds the index cheaper still
        assert shared(conn) == expected and len(expected) >= 6


def test_the_rollup_updates_of_a_later_flush_stay_hot_with_the_org_index(ledger_db: LedgerDb) -> None:
    keys = others(1)[:30]  # 30 keys on one heap page, which keeps room for a few updates (fillfactor 80)
    again = [delta(u.licensee_id, u.app_id, u.period_start, str(u.org_id), 1, 1000 + i)
             for i, u in enumerate(keys[:5])]  # fmt: skip
    with psycopg.connect(ledger_db.owner_url) as conn:
        insert(conn, keys)
        conn.commit()
        insert(conn, again)  # a later flush of 5 of the keys: each an update of its rollup row
        updated, hot = conn.execute(UPDATES).fetchone() or (0, 0)
    assert updated == 5 and hot == updated
