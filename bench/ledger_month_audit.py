"""The audit report's data and `tollgate report` on bench.ledger_month's month, one code tree against another.

    python -m bench.ledger_month_audit --before-tree DIR [--after-tree DIR] [--partition-rows N]
        [--repeat 5] [--rounds 3]

Fills September 2026 of `lic-000` (65 M calls, 691,200 deltas) and filler licensees as bench.ledger_month
does, loads the licensee's agreement and issues its September invoice. Then, in rounds that alternate
which tree goes first, a fresh Python process per tree (PYTHONPATH: `--before-tree`, a copy of an older
commit, and `--after-tree`, by default this checkout) times `repeat` warm runs of each of: the audit
report's exposure section (`period_exposure`), the whole audit report's facts (`audit_facts`),
`tollgate report --licensee lic-000`, and `tollgate report` of every licensee of the month. Each process
prints a digest of each answer, so the trees' figures are compared whole, and the exposure's calls and
records are checked against what the generator put in. JSON out: medians over all runs of a tree, the
runs, the digests.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from bench.ledger_bench import schema
from bench.ledger_month import DAYS, LICENSEE, START, load
from bench.ledger_month_fill import PER_DAY, Licensee
from bench.ledger_month_plans import agreement
from services.core.agreements import parse_agreement
from services.core.clock import FixedClock
from services.core.month import Month
from services.ledger.adapters.postgres.agreements_store import insert_agreement
from services.ledger.adapters.postgres.db import url_connector
from services.ledger.adapters.postgres.invoices import Invoicer
from services.ledger.settings import DEFAULT_APP_ROLE, role_of

HERE = Path(__file__).resolve().parent.parent
# Run in a process of its own with the tree under test first on sys.path: only services.* is imported.
TIMER = """
import contextlib, hashlib, io, json, sys, time
from datetime import UTC, datetime
import psycopg
from services.cli import main
from services.ledger.adapters.postgres.audit_data import audit_facts
from services.ledger.adapters.postgres.exposure_store import period_exposure
from services.ledger.domain.catalogue import default_catalogue

url, licensee, repeat = sys.argv[1], sys.argv[2], int(sys.argv[3])
start, end = datetime(2026, 9, 1, tzinfo=UTC), datetime(2026, 10, 1, tzinfo=UTC)
out = {"ms": {}, "digest": {}, "exposure": None}

def timed(name, call):
    runs, answer = [], None
    for _ in range(repeat + 1):  # the first run warms caches and is not counted
        began = time.perf_counter()
        answer = call()
        runs.append(round((time.perf_counter() - began) * 1000, 1))
    out["ms"][name] = runs[1:]
    text = json.dumps(answer, default=str, sort_keys=True)
    out["digest"][name] = hashlib.sha256(text.encode()).hexdigest()[:16]
    return answer

def report(*extra):
    def call():
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            assert main(["report", "--month", "2026-09", "--database-url", url, *extra]) == 0
        return buffer.getvalue()
    return call

with psycopg.connect(url) as conn:
    def read(function, *extra):
        def call():
            try:
                return function(conn, licensee, start, end, *extra)
            finally:
                conn.rollback()
        return call
    exposure = timed("exposure_section", read(period_exposure, default_catalogue()))
    out["exposure"] = [{k: m[k] for k in ("month", "usage")} for m in exposure]
    timed("audit_facts", read(audit_facts))
timed("tollgate_report_licensee", report("--licensee", licensee))
timed("tollgate_report_all", report())
print(json.dumps(out))
"""


def prepare(conn: psycopg.Connection, url: str, partition_rows: int) -> dict[str, Any]:
    """The month filled through the triggers, the licensee's agreement, its September invoice issued."""
    seconds, facts = load(conn, partition_rows)
    insert_agreement(conn, parse_agreement(agreement(LICENSEE)))
    conn.commit()
    clock = FixedClock(datetime(2026, 10, 5, tzinfo=UTC))
    invoicer = Invoicer(url_connector(url), clock, timedelta(hours=72))
    invoicer.issue(LICENSEE, Month.of(START))
    rows = conn.execute("SELECT count(*) FROM usage_entries").fetchone()
    rollup = conn.execute("SELECT count(*) FROM usage_rollup").fetchone()
    conn.rollback()
    return {**facts, "seconds": seconds, "usage_rows": rows[0] if rows else None,
            "rollup_rows": rollup[0] if rollup else None}  # fmt: skip


def time_tree(tree: Path, url: str, repeat: int, timer: str = TIMER) -> dict[str, Any]:
    """One process of `tree`'s code running `timer` (url, licensee, repeat as its arguments); its JSON."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    argv = [sys.executable, "-c", timer, url, LICENSEE, str(repeat)]
    done = subprocess.run(argv, env=env, cwd=tree, capture_output=True, text=True, check=False,  # noqa: S603
                          timeout=3600)  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"timing in {tree} failed: {done.stderr[-2000:]}")
    return dict(json.loads(done.stdout.splitlines()[-1]))


def alternate(trees: dict[str, Path], url: str, repeat: int, rounds: int, timer: str) -> dict[str, list[Any]]:
    """`rounds` rounds of one process per tree, the tree that goes first alternating; each tree's JSONs."""
    runs: dict[str, list[dict[str, Any]]] = {"before": [], "after": []}
    for i in range(rounds):
        for name in turns(i):
            runs[name].append(time_tree(trees[name], url, repeat, timer))
    return runs


def turns(i: int) -> tuple[str, str]:
    """The trees in the order they go in round (or run) `i`: before first in even ones, after in odd."""
    return ("before", "after") if i % 2 == 0 else ("after", "before")


def compare(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Medians over all runs of each tree, their ratios, the runs, and whether every answer was the same."""
    medians = {name: {read: statistics.median([ms for r in found for ms in r["ms"][read]])
                      for read in found[0]["ms"]} for name, found in runs.items()}  # fmt: skip
    return {
        "median_ms": medians,
        "ratio_after_to_before": {read: round(medians["after"][read] / medians["before"][read], 3)
                                  for read in medians["after"]},
        "same_answers": all(r["digest"] == runs["before"][0]["digest"] for rs in runs.values() for r in rs),
        "runs": {name: [r["ms"] for r in found] for name, found in runs.items()},
        "digests": {name: found[0]["digest"] for name, found in runs.items()},
    }  # fmt: skip


def run(database_url: str, trees: dict[str, Path], partition_rows: int, repeat: int, rounds: int,
        app_database_url: str | None = None) -> dict[str, Any]:  # fmt: skip
    """Fill, then time both trees in alternating rounds; medians, runs and whether their answers agree."""
    role = role_of(app_database_url) if app_database_url else DEFAULT_APP_ROLE
    expected = Licensee(LICENSEE, 65_000_000, START, DAYS * PER_DAY).expected()
    with schema(database_url, role) as url, psycopg.connect(url) as conn:
        facts = prepare(conn, url, partition_rows)
        runs = alternate(trees, url, repeat, rounds, TIMER)
    metered = runs["after"][0]["exposure"][0]["usage"]
    return {
        **facts, "expected": expected, **compare(runs),
        "exposure_exact": metered["calls"] == expected["calls"] and metered["records"] == expected["records"],
        "command": command("bench.ledger_month_audit", trees, partition_rows, repeat, rounds),
    }  # fmt: skip


def command(module: str, trees: dict[str, Path], partition_rows: int, repeat: int, rounds: int) -> str:
    """The command line `cli` takes for these arguments, as the JSON records it."""
    return (f"python -m {module} --before-tree {trees['before']} --after-tree {trees['after']} "
            f"--partition-rows {partition_rows} --repeat {repeat} --rounds {rounds}")  # fmt: skip


def cli(
    doc: str | None, run_trees: Callable[..., dict[str, Any]], repeat: int = 5, rounds: bool = True
) -> None:
    """The command line the tree benches share: parse it, run `run_trees` on it, print its JSON. Without
    `rounds` there is no --rounds (the bench alternates in one process) and `run_trees` gets None for it."""
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("TOLLGATE_DATABASE_URL", ""))
    parser.add_argument("--before-tree", type=Path, required=True, help="a copy of the older commit's tree")
    parser.add_argument("--after-tree", type=Path, default=HERE, help="default: this checkout")
    parser.add_argument("--partition-rows", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=repeat)
    if rounds:
        parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    trees = {"before": args.before_tree, "after": args.after_tree}
    found = run_trees(args.database_url, trees, args.partition_rows, args.repeat,
                      getattr(args, "rounds", None), os.environ.get("TOLLGATE_APP_DATABASE_URL"))  # fmt: skip
    print(json.dumps(found, indent=2, default=str))


def main() -> None:
    """Run against $TOLLGATE_DATABASE_URL (or the flag); print JSON."""
    cli(__doc__, run)


if __name__ == "__main__":
    main()
