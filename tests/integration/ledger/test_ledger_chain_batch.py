"""The usage chain linked per batch (migration 0013's ledger_append_usage) on the real PostgreSQL.

Each test would fail without one part of it: the trigger still linking every other writer's rows, the
locks and head reads serialising concurrent batches, the pinned timezone and datestyle of the hashed text.
"""

from __future__ import annotations

import threading

import psycopg
import pytest
from ledger_support import LedgerDb, synthetic_billables

from services.core.events import UsageRecorded
from services.ledger.adapters.kafka.consumer import prepare_staging, store_usage
from services.ledger.adapters.postgres.chain_store import verify
from services.ledger.domain.codec import USAGE_COLUMNS, to_row

pytestmark = pytest.mark.integration

_NAMES = ", ".join(USAGE_COLUMNS)
_MARKS = ", ".join(["%s"] * len(USAGE_COLUMNS))
# A row as the service role may send it, chain values of its choosing included.
FORGED = f"""INSERT INTO usage_entries ({_NAMES}, chain_seq, prev_hash, row_hash)
    VALUES ({_MARKS}, 99, repeat('f', 64), repeat('e', 64))"""  # noqa: S608 - constants
ONE_ROW = f"INSERT INTO usage_entries ({_NAMES}) VALUES ({_MARKS})"  # noqa: S608 - constants


def store(db: LedgerDb, usages: list[UsageRecorded], session: str = "") -> int:
    """The consumer's write as the service role (after `session`'s SET statements); how many were new."""
    with psycopg.connect(db.app_url) as conn:
        for statement in filter(None, session.split(";")):
            conn.execute(statement)
        prepare_staging(conn)
        rows = [to_row(usage, "t.billable", offset % 3, offset) for offset, usage in enumerate(usages)]
        with conn.cursor() as cursor:
            return store_usage(cursor, rows)


def insert_one(db: LedgerDb, usage: UsageRecorded, query: str = ONE_ROW) -> None:
    """One row by a plain INSERT of the service role: the row trigger's path."""
    with psycopg.connect(db.app_url) as conn:
        conn.execute(query, to_row(usage, "t.billable", 0, 0))  # type: ignore[arg-type]


def chains(db: LedgerDb) -> dict[str, tuple[int, int]]:
    """Rows and head of each licensee's usage chain, after checking that every chain holds."""
    with psycopg.connect(db.app_url) as conn:
        found = verify(conn)
    assert found["intact"], found["first_break"]
    usage = [c for c in found["chains"] if c["table"] == "usage_entries"]
    return {c["licensee_id"]: (c["rows"], c["head_seq"]) for c in usage}


def test_a_service_role_row_that_brings_its_own_chain_values_is_linked_by_the_trigger(
    ledger_db: LedgerDb,
) -> None:
    usages = synthetic_billables(3, "acme")
    store(ledger_db, usages[:2])
    insert_one(ledger_db, usages[2], FORGED)
    forged = ledger_db.rows("SELECT chain_seq, row_hash FROM usage_entries WHERE usage_id = %s",
                            (usages[2].usage_id,))  # fmt: skip
    assert forged[0][0] == 3 and forged[0][1] != "e" * 64
    assert chains(ledger_db) == {"acme": (3, 3)}


def test_rows_of_the_trigger_and_batches_of_the_consumer_continue_one_chain(ledger_db: LedgerDb) -> None:
    usages = synthetic_billables(12, "acme") + synthetic_billables(4, "bolt")
    insert_one(ledger_db, usages[0])
    assert store(ledger_db, usages[1:6] + usages[12:14]) == 7
    insert_one(ledger_db, usages[6])
    assert store(ledger_db, usages[:12] + usages[12:]) == 7  # the stored ones are left out, not linked
    assert chains(ledger_db) == {"acme": (12, 12), "bolt": (4, 4)}


def test_batches_of_the_same_licensees_stored_at_once_by_two_sessions_keep_one_chain_each(
    ledger_db: LedgerDb,
) -> None:
    # Each batch holds rows of both licensees, so both sessions extend both chains.
    batches = [synthetic_billables(50, "acme", 50 * n) + synthetic_billables(50, "bolt", 50 * n)
               for n in range(32)]  # fmt: skip
    start = threading.Barrier(2)

    def worker(first: int) -> None:
        with psycopg.connect(ledger_db.app_url) as conn:
            prepare_staging(conn)
            start.wait()
            for batch in batches[first::2]:
                with conn.transaction(), conn.cursor() as cursor:
                    store_usage(cursor, [to_row(u, "t.billable", 0, n) for n, u in enumerate(batch)])

    threads = [threading.Thread(target=worker, args=(first,)) for first in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert chains(ledger_db) == {"acme": (1600, 1600), "bolt": (1600, 1600)}


def test_a_batch_links_the_same_whatever_the_session_timezone_and_datestyle(ledger_db: LedgerDb) -> None:
    india = "SET timezone TO 'Asia/Kolkata'; SET datestyle TO 'SQL, DMY'"
    store(ledger_db, synthetic_billables(5, "acme"), india)
    store(ledger_db, synthetic_billables(5, "acme", start_index=5), "SET timezone TO 'America/New_York'")
    assert chains(ledger_db) == {"acme": (10, 10)}
