"""The ledger's per-licensee hash chains on the real PostgreSQL: built by the trigger, checked by verify."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from ledger_support import LedgerDb, ledger_schema, synthetic_billables
from psycopg import sql
from starlette.testclient import TestClient

from services.cli import main as cli
from services.core.clock import FixedClock
from services.core.events import UsageRecorded
from services.core.tokens import InMemoryTokenStore
from services.ledger.adapters.http.api import create_app
from services.ledger.adapters.kafka.consumer import prepare_staging, store_usage
from services.ledger.adapters.postgres.chain_store import verify
from services.ledger.adapters.postgres.db import url_connector
from services.ledger.adapters.postgres.migrate import MIGRATIONS_DIR, apply_migrations
from services.ledger.domain.codec import USAGE_COLUMNS, to_row
from services.ledger.settings import LedgerSettings, role_of

pytestmark = pytest.mark.integration

ADJUSTMENT = """INSERT INTO ledger_entries (licensee_id, kind, amount_minor, currency, reference, reason)
    VALUES (%s, 'adjustment', %s, 'USD', 'INV-x', 'test')"""


def fast_path(db: LedgerDb, usages: list[UsageRecorded]) -> int:
    """The consumer's write: COPY into its staging table, then its INSERT, as the service role."""
    with psycopg.connect(db.app_url) as conn, conn.cursor() as cursor:
        prepare_staging(conn)
        rows = [to_row(usage, "t.billable", offset % 3, offset) for offset, usage in enumerate(usages)]
        return store_usage(cursor, rows)


def test_rows_written_by_the_fast_path_with_repeats_form_one_intact_chain_per_licensee(
    ledger_db: LedgerDb,
) -> None:
    acme, bolt = synthetic_billables(40, "acme"), synthetic_billables(15, "bolt")
    assert fast_path(ledger_db, acme[:25] + bolt + acme[:5]) == 40  # repeats within the batch count once
    assert fast_path(ledger_db, acme) == 15  # the stored 25 are left out, not linked and skipped
    with psycopg.connect(ledger_db.app_url) as conn:
        found = verify(conn)
    assert found["intact"] and found["first_break"] is None
    chains = {(c["table"], c["licensee_id"]): (c["rows"], c["head_seq"]) for c in found["chains"]}
    assert chains == {("usage_entries", "acme"): (40, 40), ("usage_entries", "bolt"): (15, 15)}


def test_a_row_edited_by_the_owner_past_the_append_only_trigger_is_named_as_the_first_break(
    ledger_db: LedgerDb, capsys: pytest.CaptureFixture[str]
) -> None:
    fast_path(ledger_db, synthetic_billables(10, "acme") + synthetic_billables(3, "bolt"))
    third = ledger_db.scalar(
        "SELECT usage_id FROM usage_entries WHERE licensee_id = 'acme' AND chain_seq = 3"
    )
    with psycopg.connect(ledger_db.owner_url) as conn:  # the deliberate tampering the chain must reveal
        conn.execute("ALTER TABLE usage_entries DISABLE TRIGGER usage_entries_append_only_rows")
        conn.execute("UPDATE usage_entries SET records = records + 1000 WHERE usage_id = %s", (third,))
        conn.execute("ALTER TABLE usage_entries ENABLE TRIGGER usage_entries_append_only_rows")
    with psycopg.connect(ledger_db.app_url) as conn:
        found, bolt = verify(conn, "acme"), verify(conn, "bolt")
    assert not found["intact"]
    assert found["first_break"]["key"] == third and found["first_break"]["chain_seq"] == 3
    assert "edited" in found["first_break"]["reason"]
    assert bolt["intact"]
    assert cli(["ledger", "verify", "--licensee", "acme", "--database-url", ledger_db.app_url]) == 1
    assert f"usage_entries row {third} of acme (chain_seq 3)" in capsys.readouterr().out


def test_a_removed_row_breaks_the_chain_at_the_row_after_it(ledger_db: LedgerDb) -> None:
    with psycopg.connect(ledger_db.app_url) as conn:
        for amount in (100, 200, 300):
            conn.execute(ADJUSTMENT, ("acme", amount))
    with psycopg.connect(ledger_db.owner_url) as conn:
        conn.execute("ALTER TABLE ledger_entries DISABLE TRIGGER ledger_entries_append_only_rows")
        conn.execute("DELETE FROM ledger_entries WHERE amount_minor = 200")
    with psycopg.connect(ledger_db.app_url) as conn:
        broken = verify(conn, "acme")["first_break"]
    assert (broken["table"], broken["chain_seq"]) == ("ledger_entries", 3)
    assert "missing" in broken["reason"]


def test_concurrent_inserts_for_one_licensee_keep_one_chain(ledger_db: LedgerDb) -> None:
    def post(worker: int) -> None:
        with psycopg.connect(ledger_db.app_url, autocommit=True) as conn:
            for n in range(40):
                conn.execute(ADJUSTMENT, ("acme", worker * 1000 + n + 1))

    workers = [threading.Thread(target=post, args=(w,)) for w in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    with psycopg.connect(ledger_db.app_url) as conn:
        found = verify(conn, "acme")
    assert found["intact"]
    assert [(c["table"], c["rows"], c["head_seq"]) for c in found["chains"]] == [("ledger_entries", 160, 160)]


def early_rows(db: LedgerDb, usages: list[UsageRecorded]) -> None:
    """Store per-call rows in the columns usage_entries had before migration 0006."""
    width = USAGE_COLUMNS.index("first_event_at")
    marks, names = ", ".join(["%s"] * width), ", ".join(USAGE_COLUMNS[:width])
    rows = [to_row(usage, "t.billable", 0, offset)[:width] for offset, usage in enumerate(usages)]
    with psycopg.connect(db.app_url) as conn, conn.cursor() as cursor:
        cursor.executemany(f"INSERT INTO usage_entries ({names}) VALUES ({marks})", rows)  # noqa: S608


@contextmanager
def schema_before(database_url: str, app_url: str, tmp_path: Path, applied: int) -> Iterator[LedgerDb]:
    """A ledger schema migrated only up to its first `applied` migrations."""
    early = tmp_path / "migrations"
    early.mkdir()
    for path in sorted(MIGRATIONS_DIR.glob("*.sql"))[:applied]:
        shutil.copy(path, early)
    with ledger_schema(database_url, app_url, "early") as db:
        with psycopg.connect(db.owner_url) as conn:  # back to an empty schema, whatever later migrations made
            name = sql.Identifier(db.schema)
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(name))
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(name))
        apply_migrations(db.owner_url, role_of(app_url), early)
        yield db


def test_rows_stored_before_the_chain_migration_are_chained_by_it(
    database_url: str, app_database_url: str, tmp_path: Path
) -> None:
    with schema_before(database_url, app_database_url, tmp_path, 4) as db:
        early_rows(db, synthetic_billables(6, "acme"))
        assert apply_migrations(db.owner_url, role_of(app_database_url))[0] == "0005_hash_chains"
        fast_path(db, synthetic_billables(4, "acme", start_index=6))
        with psycopg.connect(db.app_url) as conn:
            found = verify(conn, "acme")
    assert found["intact"] and found["chains"][0]["head_seq"] == 10


def auditor_client(db: LedgerDb) -> tuple[TestClient, dict[str, str]]:
    """The ledger API on `db`, and an auditor's headers."""
    tokens = InMemoryTokenStore()
    settings = LedgerSettings(kafka_bootstrap="127.0.0.1:9", app_database_url=db.app_url,
                              tokens_file=Path("unused"))  # fmt: skip
    clock = FixedClock(datetime(2026, 10, 5, tzinfo=UTC))
    app = create_app(settings, url_connector(db.app_url), tokens, clock)
    return TestClient(app), {"Authorization": f"Bearer {tokens.create('a', 'auditor')}"}


def test_the_verify_route_answers_auditors_with_the_chain_heads(ledger_db: LedgerDb) -> None:
    fast_path(ledger_db, synthetic_billables(5, "acme"))
    client, auditor = auditor_client(ledger_db)
    answer = client.get("/v1/licensees/acme/ledger/verify", headers=auditor)
    assert answer.status_code == 200
    assert answer.json()["intact"] is True
    assert answer.json()["chains"][0]["head_seq"] == 5
    assert len(answer.json()["chains"][0]["head_hash"]) == 64


def test_the_audit_report_prints_the_head_that_verify_recomputes(ledger_db: LedgerDb) -> None:
    fast_path(ledger_db, synthetic_billables(3, "acme"))
    client, auditor = auditor_client(ledger_db)
    head = client.get("/v1/licensees/acme/ledger/verify", headers=auditor).json()["chains"][0]["head_hash"]
    report = client.get("/v1/licensees/acme/audit-report?from=2026-09&to=2026-10", headers=auditor)
    assert "Ledger hash chain heads" in report.text and head in report.text


def aggregated(licensee: str, count: int) -> list[UsageRecorded]:
    """`count` aggregated deltas of a government org, one per hour of October 1st."""
    start = datetime(2026, 10, 1, tzinfo=UTC)
    return [UsageRecorded(f"00000000-0000-5000-8000-{n:012d}", licensee, "app-1", start + timedelta(hours=n),
                          start + timedelta(hours=n + 1), 10 + n, 100, org_id="gov-1", org_type="government",
                          first_event_at=start + timedelta(hours=n, minutes=1),
                          last_event_at=start + timedelta(hours=n, minutes=59),
                          government_notified=n % 2 == 0,
                          reference=("tollgate.api-calls.v1", 1, 100 * n, 100 * n + 9 + n))
            for n in range(count)]  # fmt: skip


def test_links_made_before_the_aggregated_usage_migration_stay_valid_and_new_columns_are_hashed(
    database_url: str, app_database_url: str, tmp_path: Path
) -> None:
    with schema_before(database_url, app_database_url, tmp_path, 5) as db:
        early_rows(db, synthetic_billables(5, "acme"))
        with psycopg.connect(db.app_url) as conn:
            head = verify(conn, "acme")["chains"][0]["head_hash"]
        assert apply_migrations(db.owner_url, role_of(app_database_url))[0] == "0006_aggregated_usage"
        with psycopg.connect(db.app_url) as conn:
            assert verify(conn, "acme")["chains"][0]["head_hash"] == head  # nothing relinked, nothing broken
        fast_path(db, synthetic_billables(3, "acme", start_index=5) + aggregated("acme", 4))
        with psycopg.connect(db.app_url) as conn:
            found = verify(conn, "acme")
        assert found["intact"] and found["chains"][0]["rows"] == 12
        with psycopg.connect(db.owner_url) as conn:  # tampering with a new column only
            conn.execute("ALTER TABLE usage_entries DISABLE TRIGGER usage_entries_append_only_rows")
            conn.execute("UPDATE usage_entries SET government_notified = NOT government_notified "
                         "WHERE licensee_id = 'acme' AND chain_seq = 10")  # fmt: skip
        with psycopg.connect(db.app_url) as conn:
            broken = verify(conn, "acme")["first_break"]
    assert broken["chain_seq"] == 10 and "edited" in broken["reason"]


def test_a_value_written_into_a_new_column_of_an_old_row_breaks_its_link(ledger_db: LedgerDb) -> None:
    fast_path(ledger_db, synthetic_billables(4, "acme"))
    with psycopg.connect(ledger_db.owner_url) as conn:
        conn.execute("ALTER TABLE usage_entries DISABLE TRIGGER usage_entries_append_only_rows")
        conn.execute("UPDATE usage_entries SET source_topic = 'x', source_partition = 0, "
                     "source_first_offset = 0, source_last_offset = 0 "
                     "WHERE licensee_id = 'acme' AND chain_seq = 2")  # fmt: skip
    with psycopg.connect(ledger_db.app_url) as conn:
        broken = verify(conn, "acme")["first_break"]
    assert broken["chain_seq"] == 2 and "edited" in broken["reason"]
