"""The batch's write without planner settings (migration 0015), on the real PostgreSQL.

0014 pinned the duplicate check to index probes with planner settings on the whole of ledger_append_usage,
so the rest of the call ran under them too: the inserts, the chain and the triggers they fire. 0015 plans
the check for each batch instead (test_ledger_duplicate_check.py: still no scan of a large table, whatever
the session planned first); these tests read the settings the batch's triggers see, and that the check
still leaves out every usage_id stored in any month, whichever month the re-sent row names.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import psycopg
import pytest
from ledger_support import LedgerDb, synthetic_billables

from services.core.events import UsageRecorded
from services.ledger.adapters.kafka.consumer import prepare_staging, store_usage
from services.ledger.adapters.postgres.chain_store import verify
from services.ledger.domain.codec import to_row

pytestmark = pytest.mark.integration

PLANNER_PATHS = ("enable_seqscan", "enable_bitmapscan", "enable_hashjoin", "enable_mergejoin")
# A statement trigger of the test's own (the owner's), fired by the batch's INSERT inside the call: it
# reports the planner settings in force there.
SETTINGS = ", ".join(f"current_setting('{name}')" for name in PLANNER_PATHS)
SPY = f"""CREATE FUNCTION spy_settings() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE NOTICE 'settings %', concat_ws(',', {SETTINGS});
    RETURN NULL;
END $$;
CREATE TRIGGER usage_entries_spy AFTER INSERT ON usage_entries FOR EACH STATEMENT
    EXECUTE FUNCTION spy_settings()"""


def rows_of(usages: list[UsageRecorded], first_offset: int) -> list[tuple[object, ...]]:
    """The consumer's rows of `usages`, at consecutive offsets of one partition."""
    return [to_row(u, "t.billable", 0, first_offset + i) for i, u in enumerate(usages)]


def store(db: LedgerDb, rows: list[tuple[object, ...]]) -> int:
    """One committed batch of the consumer as the service role; how many rows were new."""
    with psycopg.connect(db.app_url) as conn:
        prepare_staging(conn)
        with conn.cursor() as cursor:
            return store_usage(cursor, rows)


def moved(usage: UsageRecorded, days: int) -> UsageRecorded:
    """The same delta `days` later: its hour and event time in another month."""
    shift = timedelta(days=days)
    at = usage.occurred_at + shift if usage.occurred_at else None
    return dataclasses.replace(
        usage, period_start=usage.period_start + shift, period_end=usage.period_end + shift, occurred_at=at
    )


def test_the_batch_s_insert_and_its_triggers_plan_with_every_path_the_session_has(
    ledger_db: LedgerDb,
) -> None:
    with psycopg.connect(ledger_db.owner_url) as owner:
        owner.execute(SPY)
    seen: list[str] = []
    with psycopg.connect(ledger_db.app_url) as conn:
        conn.add_notice_handler(lambda notice: seen.append(notice.message_primary or ""))
        session = conn.execute(f"SELECT concat_ws(',', {SETTINGS})").fetchone()
        prepare_staging(conn)
        with conn.cursor() as cursor:
            assert store_usage(cursor, rows_of(synthetic_billables(20, "acme"), 0)) == 20
    assert session is not None and "off" not in session[0]
    assert seen == [f"settings {session[0]}"], f"{PLANNER_PATHS} inside the batch's INSERT: {seen}"


def test_ids_stored_in_any_month_are_left_out_whichever_month_the_re_sent_row_names(
    ledger_db: LedgerDb,
) -> None:
    # September in its own partition, October in the DEFAULT one (no partition made), December in the
    # current month's (migration 0008 makes it).
    ledger_db.scalar("SELECT ledger_ensure_usage_partitions(ARRAY['2026-09-01T00:00Z'::timestamptz])")
    september = synthetic_billables(30, "acme")
    october = [moved(u, 31) for u in synthetic_billables(30, "bolt", 100)]
    december = [moved(u, 92) for u in synthetic_billables(30, "acme", 200)]
    assert store(ledger_db, rows_of(september + october + december, 0)) == 90
    assert ledger_db.scalar("SELECT count(DISTINCT tableoid) FROM usage_entries") == 3
    fresh = synthetic_billables(5, "acme", 300) + synthetic_billables(5, "bolt", 400)
    # Stored ids re-sent in their own month, in another month, and a fresh id twice in the batch.
    resent = [september[0], moved(september[1], 31), moved(october[0], -31), moved(december[0], -92),
              october[1], december[1], *fresh, fresh[0], moved(fresh[1], 31)]  # fmt: skip
    assert store(ledger_db, rows_of(resent, 1000)) == 10
    counts = ledger_db.rows("SELECT usage_id, count(*) FROM usage_entries GROUP BY 1 HAVING count(*) > 1")
    assert counts == []
    assert ledger_db.scalar("SELECT count(*) FROM usage_entries") == 100
    # The repeats within the batch keep the earliest offset, in the month it named.
    first = ledger_db.rows("SELECT kafka_offset, period_start FROM usage_entries WHERE usage_id = %s",
                           (fresh[1].usage_id,))  # fmt: skip
    assert first == [(1000 + 7, fresh[1].period_start)]
    expected = sum(u.calls for u in september + october + december + fresh)
    assert ledger_db.scalar("SELECT sum(calls) FROM usage_entries") == expected
    assert ledger_db.scalar("SELECT sum(calls) FROM usage_rollup") == expected
    with psycopg.connect(ledger_db.app_url) as conn:
        found = verify(conn)
    assert found["intact"], found["first_break"]


def test_a_replayed_batch_stores_nothing_and_changes_no_chain(ledger_db: LedgerDb) -> None:
    rows = rows_of(synthetic_billables(2000, "acme") + synthetic_billables(500, "bolt"), 0)
    assert store(ledger_db, rows) == 2500
    heads_query = "SELECT licensee_id, max(chain_seq) FROM usage_entries GROUP BY 1 ORDER BY 1"
    heads = ledger_db.rows(heads_query)
    assert store(ledger_db, rows) == 0
    assert store(ledger_db, rows[::-1]) == 0
    assert ledger_db.rows(heads_query) == heads
    assert ledger_db.scalar("SELECT count(*) FROM usage_entries") == 2500
