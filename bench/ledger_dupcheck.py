"""The batch's duplicate check at table size: one 10,000-row store at migrations 0013, 0014 and 0015.

    python -m bench.ledger_dupcheck [--database-url URL] [--sizes 100000,2000000] [--batch 10000]
                                    [--versions 13,14,15]

For each variant (migrations through 0013: the plain NOT EXISTS; through 0014: probe settings on the whole
function; through 0015: on the duplicate check's own function only) a fresh schema; a consumer session stores
one small batch while the table is empty, so ledger_append_usage's plan is made then, as it is for a
consumer that starts on a new schema or month. Autovacuum is off on the usage partitions, so nothing
analyses them and that plan stays, as it does until autovacuum's next analysis. The table is then filled
(bench/ledger_month_fill.py, June to November 2026, linked by the real trigger) to each size, and the same
session stores a batch of fresh December deltas `repeat` times (each rolled back): the median store time
(COPY into staging and the one call). After the last size, ANALYZE and a new session: the plan a fresh
session makes on current statistics. JSON on stdout.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
from psycopg import sql

from bench.billable_stream import BillableStream, Shape
from bench.ledger_month_fill import APPS, ORGS, Licensee, fill
from services.ledger.adapters.kafka.consumer import prepare_staging, store_usage
from services.ledger.adapters.postgres.migrate import MIGRATIONS_DIR, apply_migrations
from services.ledger.domain.codec import UsageRow, to_row
from services.ledger.settings import role_of

log = logging.getLogger("bench.ledger_dupcheck")
MONTHS = [datetime(2026, month, 1, tzinfo=UTC) for month in range(6, 12)]
MONTH_ROWS = 691_200  # a 30-day month of one licensee at full fan-out (80 keys, 8,640 flushes)
NO_AUTOVACUUM = "ALTER TABLE {} SET (autovacuum_enabled = off)"
PARTS = "SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = 'usage_entries'::regclass"


@contextmanager
def migrations_through(version: int) -> Iterator[Path]:
    """A directory holding the migrations up to `version` (the same files, so the same checksums)."""
    with tempfile.TemporaryDirectory() as directory:
        for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
            if int(path.name[:4]) <= version:
                shutil.copy(path, directory)
        yield Path(directory)


@contextmanager
def schema(owner_url: str, app_url: str, version: int) -> Iterator[tuple[str, str]]:
    """A fresh schema migrated through `version`; yields its owner and service-role URLs; dropped after."""
    name = f"bench_dupcheck_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(owner_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    own, app = (f"{url}{'&' if '?' in url else '?'}options={quote(f'-csearch_path={name}')}"
                for url in (owner_url, app_url))  # fmt: skip
    try:
        with migrations_through(version) as directory:
            apply_migrations(own, role_of(app_url), directory)
        yield own, app
    finally:
        with psycopg.connect(owner_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))


def batch(size: int, offset: int) -> list[UsageRow]:
    """`size` fresh deltas of 2 December 2026, none of them stored."""
    deltas = BillableStream(Shape(start=datetime(2026, 12, 2, tzinfo=UTC))).deltas(size)
    return [to_row(u, "bench.billable", i % 6, offset + i) for i, u in enumerate(deltas)]


def timed_stores(conn: psycopg.Connection, rows: list[UsageRow], repeat: int) -> float:
    """Median milliseconds of storing `rows` in one transaction, rolled back each time."""
    times = []
    for _ in range(repeat):
        with conn.cursor() as cursor:
            started = time.perf_counter()
            store_usage(cursor, rows)
            times.append((time.perf_counter() - started) * 1000)
        conn.rollback()
    return round(statistics.median(times), 1)


def fill_to(conn: psycopg.Connection, target: int, filled: int) -> int:
    """Filler licensees' months (one licensee-month each, at most MONTH_ROWS) until `target` rows."""
    while filled < target:
        rows = min(MONTH_ROWS, target - filled)
        month = MONTHS[filled // MONTH_ROWS % len(MONTHS)]
        filled += fill(conn, Licensee(f"fill-{filled}", 40 * rows, month, rows // (APPS * ORGS)))
    return filled


def variant(owner_url: str, app_url: str, version: int, sizes: list[int], rows: list[UsageRow],
            repeat: int) -> dict[str, Any]:  # fmt: skip
    """Store times of one migration level at each size (plan of the empty table), then on fresh statistics."""
    out: dict[str, Any] = {"stale_plan_ms": {}}
    with schema(owner_url, app_url, version) as (own, app):
        with psycopg.connect(own) as owner, psycopg.connect(app) as session:
            owner.execute("SELECT ledger_ensure_usage_partitions(%s::timestamptz[])", (MONTHS,))
            for (part,) in owner.execute(PARTS).fetchall():
                owner.execute(sql.SQL(NO_AUTOVACUUM).format(sql.Identifier(part)))
            owner.commit()
            prepare_staging(session)
            session.commit()
            timed_stores(session, rows[:100], 1)  # the plan, made on the empty table
            filled = 0
            for size in sizes:
                filled = fill_to(owner, size, filled)
                out["stale_plan_ms"][str(filled)] = timed_stores(session, rows, repeat)
                log.info("%04d at %d rows: %s ms", version, filled, out["stale_plan_ms"][str(filled)])
            owner.execute("ANALYZE usage_entries")
            owner.commit()
        with psycopg.connect(app) as fresh:
            prepare_staging(fresh)
            fresh.commit()
            out["fresh_statistics_ms"] = {str(filled): timed_stores(fresh, rows, repeat)}
    return out


def run(owner_url: str, app_url: str, sizes: list[int], size: int = 10_000, repeat: int = 3,
        versions: tuple[int, ...] = (13, 14, 15)) -> dict[str, Any]:  # fmt: skip
    """Each variant (`through_NNNN`), one after the other, on the same batch and sizes."""
    rows = batch(size, 10_000_000)
    out: dict[str, Any] = {"batch_rows": size, "repeat": repeat, "load_average": os.getloadavg()}
    for version in versions:
        out[f"through_{version:04d}"] = variant(owner_url, app_url, version, sizes, rows, repeat)
    out["load_average_after"] = os.getloadavg()
    return out


def main() -> None:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("TOLLGATE_DATABASE_URL", ""))
    parser.add_argument("--app-database-url", default=os.environ.get("TOLLGATE_APP_DATABASE_URL", ""))
    parser.add_argument("--sizes", default="100000,2000000")
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--versions", default="13,14,15", help="migration levels to compare, in order")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("services.ledger.adapters.postgres.migrate").setLevel(logging.WARNING)
    sizes = [int(s) for s in args.sizes.split(",")]
    app_url = args.app_database_url or args.database_url
    versions = tuple(int(v) for v in args.versions.split(","))
    result = run(args.database_url, app_url, sizes, args.batch, args.repeat, versions)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
