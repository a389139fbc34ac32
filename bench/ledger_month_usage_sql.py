"""The SQL of `GET /v1/usage` on bench.ledger_month's month, one code tree's statement against another's.

    python -m bench.ledger_month_usage_sql --before-tree DIR [--after-tree DIR] [--partition-rows N]
        [--repeat 15]

Fills September 2026 of `lic-000` (65 M calls, 691,200 deltas, 57,600 rollup rows) and filler licensees as
bench.ledger_month does. A Python process per tree (PYTHONPATH: `--before-tree`, a copy of an older commit,
and `--after-tree`, by default this checkout) prints the statement `usage_query.statement` makes for each
query; this process then runs them on one connection, warm, alternating which tree goes first, and checks
that both trees answer row for row the same (and the month's calls, where no bound cuts it). Only the SQL is
timed: Python's row building is the same in both. JSON out: medians, ratio after/before, runs, and the
1-minute load average around each query (the machine is shared).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from bench.ledger_bench import schema
from bench.ledger_month import CALLS, DAYS, LICENSEE, START, load
from bench.ledger_month_audit import cli, turns
from bench.ledger_month_fill import PER_DAY, Licensee
from services.ledger.adapters.postgres.usage_sums import READ_SETTINGS
from services.ledger.settings import DEFAULT_APP_ROLE, role_of

END = datetime(2026, 10, 1, tzinfo=UTC)
# bench.ledger_month's three queries, and the month from 00:30: its first hour's 80 keys are cut.
QUERIES: dict[str, dict[str, str]] = {
    "month": {}, "day_by_app_org": {"window": "day", "group_by": "app,org"},
    "hour_by_app": {"window": "hour", "group_by": "app"},
    "month_from_00_30": {"from": "2026-09-01T00:30:00Z"},
}  # fmt: skip
# Run with the tree under test first on sys.path: only its usage_query is imported.
STATEMENTS = """
import json, sys
import psycopg
from services.ledger.adapters.postgres import usage_query
queries = json.loads(sys.argv[2])
with psycopg.connect(sys.argv[1]) as conn:
    print(json.dumps({name: usage_query.statement(usage_query.parse_query(q)).as_string(conn)
                      for name, q in queries.items()}))
"""


def statements(tree: Path, url: str) -> dict[str, str]:
    """The tree's SQL of each query, as text."""
    queries = {name: {"licensee": LICENSEE, "from": START.isoformat(), "to": END.isoformat(),
                      "limit": "10000", **extra} for name, extra in QUERIES.items()}  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run([sys.executable, "-c", STATEMENTS, url, json.dumps(queries)], env=env, cwd=tree,  # noqa: S603
                          check=True, capture_output=True, text=True)  # fmt: skip
    found: dict[str, str] = json.loads(done.stdout)
    return found


def _once(conn: psycopg.Connection, text: str, values: dict[str, Any]) -> tuple[float, list[Any]]:
    conn.execute(READ_SETTINGS)  # as the API's read does
    started = time.perf_counter()
    rows = conn.execute(sql.SQL(text), values).fetchall()  # type: ignore[arg-type]
    took = (time.perf_counter() - started) * 1000
    conn.rollback()
    return took, rows


def timed(
    conn: psycopg.Connection, trees: dict[str, dict[str, str]], name: str, repeat: int
) -> dict[str, Any]:
    """Medians of `repeat` alternated runs of each tree's SQL of one query, after a warm run that checks
    the trees answer the same."""
    start = datetime.fromisoformat(QUERIES[name].get("from", START.isoformat()))
    values = {"licensee": LICENSEE, "start": start, "end": END, "limit": 10_001}
    answers = {tree: _once(conn, texts[name], values)[1] for tree, texts in trees.items()}
    before, after = answers.values()
    runs: dict[str, list[float]] = {tree: [] for tree in trees}
    loads = [round(os.getloadavg()[0], 2)]
    for i in range(repeat):
        for tree in turns(i):
            runs[tree].append(round(_once(conn, trees[tree][name], values)[0], 1))
    loads.append(round(os.getloadavg()[0], 2))
    medians = {tree: round(statistics.median(times), 1) for tree, times in runs.items()}
    return {"rows": len(after), "calls": sum(row[-2] for row in after), "same_answers": before == after,
            "median_ms": medians, "ratio_after_before": round(medians["after"] / medians["before"], 3),
            "load_1min": loads, "runs_ms": runs}  # fmt: skip


def run(database_url: str, before: Path, after: Path, app_database_url: str | None = None,
        partition_rows: int = 2_000_000, repeat: int = 15) -> dict[str, Any]:  # fmt: skip
    """Fill the month, time both trees' SQL of each query; the JSON document of this bench."""
    role = role_of(app_database_url) if app_database_url else DEFAULT_APP_ROLE
    expected = Licensee(LICENSEE, CALLS, START, DAYS * PER_DAY).expected()
    with schema(database_url, role) as url, psycopg.connect(url) as conn:
        seconds, facts = load(conn, partition_rows)
        trees = {"before": statements(before, url), "after": statements(after, url)}
        results = {name: timed(conn, trees, name, repeat) for name in QUERIES}
    for name, result in results.items():
        result["exact"] = result["same_answers"] and (name == "month_from_00_30"
                                                      or result["calls"] == expected["calls"])  # fmt: skip
    command = " ".join(["python -m bench.ledger_month_usage_sql", *sys.argv[1:]])
    return {"before_tree": str(before), "after_tree": str(after), "fill_seconds": seconds, **facts,
            "queries": results, "command": command}  # fmt: skip


def main() -> None:
    """Run against $TOLLGATE_DATABASE_URL (or the flag); print JSON."""
    cli(__doc__, trees_run, repeat=15, rounds=False)


def trees_run(database_url: str, trees: dict[str, Path], partition_rows: int, repeat: int, _rounds: None,
              app_database_url: str | None) -> dict[str, Any]:  # fmt: skip
    """`run` as bench.ledger_month_audit's `cli` calls it (this bench alternates in one process)."""
    return run(database_url, trees["before"].resolve(), trees["after"].resolve(), app_database_url,
               partition_rows, repeat)  # fmt: skip


if __name__ == "__main__":
    main()
