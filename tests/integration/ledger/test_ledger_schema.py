"""Migrations and the append-only guarantee, against the stack's PostgreSQL."""

from __future__ import annotations

import shutil
from pathlib import Path

import psycopg
import pytest
from ledger_support import LedgerDb, ledger_schema

from services.ledger.adapters.postgres.migrate import MIGRATIONS_DIR, apply_migrations
from services.ledger.errors import MigrationError
from services.ledger.settings import role_of

pytestmark = pytest.mark.integration

LEDGER_TABLES = ("agreements", "usage_entries", "invoices", "invoice_lines", "ledger_entries", "dead_letters",
                 "alerts")  # fmt: skip


def test_migrations_apply_to_an_empty_schema_and_a_second_run_changes_nothing(
    database_url: str, app_database_url: str
) -> None:
    with ledger_schema(database_url, app_database_url, "twice") as db:
        assert apply_migrations(db.owner_url, role_of(app_database_url)) == []
        assert db.scalar("SELECT count(*) FROM schema_migrations") == len(list(MIGRATIONS_DIR.glob("*.sql")))
        tables = {
            r[0] for r in db.rows("SELECT tablename FROM pg_tables WHERE schemaname = %s", (db.schema,))
        }
        assert {*LEDGER_TABLES, "consumer_offsets", "schema_migrations"} <= tables


def test_a_migration_edited_after_it_was_applied_is_refused(ledger_db: LedgerDb, tmp_path: Path) -> None:
    edited = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, edited)
    first = sorted(edited.glob("*.sql"))[0]
    first.write_text(first.read_text() + "\n-- edited\n")
    with pytest.raises(MigrationError, match="changed after it was applied"):
        apply_migrations(ledger_db.owner_url, role_of(ledger_db.app_url), edited)


def _refusal(db: LedgerDb, url: str, statement: str) -> str:
    """Seed one ledger entry, run `statement` connected with `url`, and return why it was refused."""
    with psycopg.connect(db.app_url) as conn:
        conn.execute("""INSERT INTO ledger_entries (licensee_id, kind, amount_minor, currency,
            reference, reason)
                        VALUES ('acme', 'adjustment', 100, 'USD', 'INV-acme-2026-10', 'seed')""")
    with psycopg.connect(url) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege) as caught:
        conn.execute(statement)
    return str(caught.value)


@pytest.mark.parametrize("statement", [
    "UPDATE ledger_entries SET amount_minor = 0",
    "DELETE FROM ledger_entries",
    "TRUNCATE ledger_entries",
    "UPDATE usage_entries SET calls = 0",
    "DELETE FROM invoices",
    "UPDATE alerts SET severity = 'warning'",
    "DELETE FROM alerts",
])  # fmt: skip
def test_the_service_role_cannot_update_or_delete_ledger_rows(ledger_db: LedgerDb, statement: str) -> None:
    assert "permission denied" in _refusal(ledger_db, ledger_db.app_url, statement)
    assert ledger_db.scalar("SELECT sum(amount_minor) FROM ledger_entries") == 100


@pytest.mark.parametrize(
    "statement",
    ["UPDATE ledger_entries SET amount_minor = 0", "DELETE FROM ledger_entries", "TRUNCATE alerts"],
)
def test_even_the_owner_hits_the_append_only_trigger(ledger_db: LedgerDb, statement: str) -> None:
    assert "append-only" in _refusal(ledger_db, ledger_db.owner_url, statement)
    assert ledger_db.scalar("SELECT count(*) FROM ledger_entries") == 1


def test_the_service_role_moves_only_its_kafka_offsets(ledger_db: LedgerDb) -> None:
    with psycopg.connect(ledger_db.app_url) as conn:
        conn.execute("INSERT INTO consumer_offsets VALUES ('g', 't', 0, 5)")
        conn.execute("UPDATE consumer_offsets SET next_offset = 6")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM consumer_offsets")


@pytest.mark.parametrize("statement", [
    "UPDATE consumer_offsets SET next_offset = 4",
    "UPDATE consumer_offsets SET next_offset = 0",
    "UPDATE consumer_offsets SET topic = 'other'",
])  # fmt: skip
def test_the_service_role_cannot_move_its_kafka_offsets_backwards_or_elsewhere(
    ledger_db: LedgerDb, statement: str
) -> None:
    with psycopg.connect(ledger_db.app_url) as conn:
        conn.execute("INSERT INTO consumer_offsets VALUES ('g', 't', 0, 5)")
    with psycopg.connect(ledger_db.app_url) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(statement)
    assert ledger_db.scalar("SELECT next_offset FROM consumer_offsets WHERE topic = 't'") == 5


def test_the_owner_may_reset_the_kafka_offsets(ledger_db: LedgerDb) -> None:
    with psycopg.connect(ledger_db.app_url) as conn:
        conn.execute("INSERT INTO consumer_offsets VALUES ('g', 't', 0, 5)")
    with psycopg.connect(ledger_db.owner_url) as conn:
        conn.execute("UPDATE consumer_offsets SET next_offset = 0")
    assert ledger_db.scalar("SELECT next_offset FROM consumer_offsets") == 0
