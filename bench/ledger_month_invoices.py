"""The invoice run (`Invoicer.issue_due`) on bench.ledger_month's month, one code tree against another.

    python -m bench.ledger_month_invoices --before-tree DIR [--after-tree DIR] [--partition-rows N]
        [--repeat 5] [--rounds 3]

Fills September 2026 of `lic-000` (65 M calls, 691,200 deltas) and filler licensees as bench.ledger_month
does and loads the licensee's agreement; nothing is invoiced. Then, in rounds that alternate which tree
goes first (bench.ledger_month_audit's processes, one per tree and round), times `repeat` warm runs of
each of: the run's list of due invoices (`Invoicer._due`: the first usage month, then each month's
licensees without an invoice) and the whole run on 2026-10-05 (`issue_due`: that list, then every
licensee's September invoice drafted and written), each run rolled back after it so every run issues the
same invoices. Each process prints a digest of each answer (the due list, the invoice ids) and what the
invoices billed lic-000, checked against what the generator put in. JSON out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg

from bench.ledger_bench import schema
from bench.ledger_month import DAYS, LICENSEE, START, load
from bench.ledger_month_audit import alternate, cli, command, compare
from bench.ledger_month_fill import PER_DAY, Licensee
from bench.ledger_month_plans import agreement
from services.core.agreements import parse_agreement
from services.ledger.adapters.postgres.agreements_store import insert_agreement
from services.ledger.settings import DEFAULT_APP_ROLE, role_of

# Run in a process of its own with the tree under test first on sys.path: only services.* is imported.
TIMER = """
import contextlib, hashlib, json, sys, time
from datetime import UTC, datetime, timedelta
import psycopg
from services.core.clock import FixedClock
from services.ledger.adapters.postgres.invoices import Invoicer

url, licensee, repeat = sys.argv[1], sys.argv[2], int(sys.argv[3])
BILLED = '''SELECT coalesce(sum(l.calls), 0), coalesce(sum(l.records), 0) FROM invoice_lines l
    JOIN invoices i USING (invoice_id) WHERE i.licensee_id = %s AND l.usage_month = '2026-09-01'
      AND l.kind IN ('usage', 'unagreed_usage', 'late_usage')'''
out = {"ms": {}, "digest": {}, "billed": None}
with psycopg.connect(url) as conn:
    borrowed = contextlib.nullcontext(conn)  # one open transaction: issue() nests a savepoint in it
    invoicer = Invoicer(lambda: borrowed, FixedClock(datetime(2026, 10, 5, tzinfo=UTC)), timedelta(hours=72))

    def timed(name, call):
        runs = []
        for _ in range(repeat + 1):  # the first run warms caches and is not counted
            began = time.perf_counter()
            answer = call()
            runs.append(round((time.perf_counter() - began) * 1000, 1))
            out["billed"] = [int(v) for v in conn.execute(BILLED, (licensee,)).fetchone()]
            conn.rollback()  # nothing stays issued: the next run does the same work
        out["ms"][name] = runs[1:]
        text = json.dumps(answer, default=str, sort_keys=True)
        out["digest"][name] = hashlib.sha256(text.encode()).hexdigest()[:16]

    timed("invoice_run_due_list", invoicer._due)
    timed("invoice_run_issue_due", invoicer.issue_due)
print(json.dumps(out))
"""


def run(database_url: str, trees: dict[str, Path], partition_rows: int, repeat: int, rounds: int,
        app_database_url: str | None = None) -> dict[str, Any]:  # fmt: skip
    """Fill, then time both trees in alternating rounds; medians, runs and whether their answers agree."""
    role = role_of(app_database_url) if app_database_url else DEFAULT_APP_ROLE
    expected = Licensee(LICENSEE, 65_000_000, START, DAYS * PER_DAY).expected()
    with schema(database_url, role) as url, psycopg.connect(url) as conn:
        seconds, facts = load(conn, partition_rows)
        insert_agreement(conn, parse_agreement(agreement(LICENSEE)))
        held = conn.execute("SELECT count(*), (SELECT count(*) FROM usage_rollup) FROM usage_entries")
        rows, rollup = held.fetchone() or (None, None)
        conn.commit()
        runs = alternate(trees, url, repeat, rounds, TIMER)
    billed = {name: found[0]["billed"] for name, found in runs.items()}
    return {
        **facts, "seconds": seconds, "usage_rows": rows, "rollup_rows": rollup, "expected": expected,
        **compare(runs), "billed_lic_000": billed,
        "billed_exact": all(b == [expected["calls"], expected["records"]] for b in billed.values()),
        "command": command("bench.ledger_month_invoices", trees, partition_rows, repeat, rounds),
    }  # fmt: skip


def main() -> None:
    """Run against $TOLLGATE_DATABASE_URL (or the flag); print JSON."""
    cli(__doc__, run)


if __name__ == "__main__":
    main()
