"""Versioned SQL migrations (`migrations/NNNN_name.sql`), applied in order, each in its own transaction."""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from services.ledger.errors import MigrationError
from services.ledger.settings import DEFAULT_APP_ROLE

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
# One migrator at a time, whichever instance starts first; the others wait, then find nothing to do.
_LOCK_KEY = 0x7E11_6A7E


@dataclass(frozen=True, slots=True)
class Migration:
    """One migration file."""

    version: int
    name: str
    text: str

    @property
    def checksum(self) -> str:
        """SHA-256 of the file as written (before placeholders are filled in)."""
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The migrations in `directory`, in version order; duplicate versions are a packaging bug."""
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise MigrationError(f"migration file {path.name} is not named NNNN_name.sql")
        version = int(match.group(1))
        if version in found:
            raise MigrationError(f"two migrations have version {version:04d}")
        found[version] = Migration(version, path.stem, path.read_text(encoding="utf-8"))
    return [found[v] for v in sorted(found)]


def apply_migrations(
    owner_url: str, app_role: str = DEFAULT_APP_ROLE, directory: Path = MIGRATIONS_DIR
) -> list[str]:
    """Bring the schema up to date as the owner role; return the names applied (empty when current)."""
    migrations = discover(directory)
    try:
        with psycopg.connect(owner_url, autocommit=True) as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
            try:
                return _apply_all(conn, migrations, app_role)
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    except psycopg.Error as exc:
        raise MigrationError(f"migrating the ledger schema failed: {exc}") from exc


def _apply_all(conn: psycopg.Connection, migrations: list[Migration], app_role: str) -> list[str]:
    conn.execute("""CREATE TABLE IF NOT EXISTS schema_migrations (
        version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now())""")
    if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (app_role,)).fetchone() is None:
        raise MigrationError(f"the service role {app_role!r} does not exist; create it before migrating")
    schema = conn.execute("SELECT current_schema()").fetchone()
    if schema is None or schema[0] is None:
        raise MigrationError("the owner connection has no current schema")
    done = {row[0]: row[1] for row in conn.execute("SELECT version, checksum FROM schema_migrations")}
    applied: list[str] = []
    for migration in migrations:
        if migration.version in done:
            if done[migration.version] != migration.checksum:
                # Editing an applied migration would leave databases that differ silently: add a new one.
                raise MigrationError(f"migration {migration.name} changed after it was applied")
            continue
        statement = sql.SQL(migration.text).format(  # type: ignore[arg-type]
            schema=sql.Identifier(schema[0]), app_role=sql.Identifier(app_role)
        )
        with conn.transaction():
            conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                (migration.version, migration.name, migration.checksum),
            )
        log.info("applied migration %s", migration.name)
        applied.append(migration.name)
    return applied
