"""The invoice run, the licensee list and the shared-org query with hundreds of licensees in the month.

    python -m bench.ledger_month_licensees --before-tree DIR [--after-tree DIR] [--partition-rows N]
        [--repeat 5] [--rounds 3]

Fills September 2026 of `lic-000` (65 M calls, 691,200 deltas) and filler licensees as bench.ledger_month
does, then SMALL small licensees (200,000 calls in 40 flushes of 80 bucket keys: 3,200 deltas each, each
from its own hour of the month), every ten of them serving the same ten requester orgs, and loads an
agreement for every licensee; nothing is invoiced. Then, in rounds that alternate which tree goes first
(bench.ledger_month_audit's processes), times `repeat` warm runs of each of: the invoice run's due list
(`Invoicer._due`), the whole run on 2026-10-05 (`issue_due`, rolled back after each run), `tollgate
report`'s licensee list (`usage_licensees.month_licensees`) and the shared orgs of the audit report
(`group_store.shared_org_facts`) of lic-000 and of a small licensee. EXPLAIN (ANALYZE, BUFFERS) of the
shared-org SQL of both, in this checkout. JSON out.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg

from bench import ledger_month_invoices as invoices
from bench.ledger_bench import schema
from bench.ledger_month import LICENSEE, START, load
from bench.ledger_month_audit import alternate, cli, command, compare
from bench.ledger_month_fill import Licensee, fill
from bench.ledger_month_plans import agreement
from services.core.agreements import parse_agreement
from services.ledger.adapters.postgres.agreements_store import insert_agreement
from services.ledger.adapters.postgres.group_store import SHARED, served
from services.ledger.settings import DEFAULT_APP_ROLE, role_of

SMALL, SMALL_CALLS, SMALL_FLUSHES, SHARING = 500, 200_000, 40, 10
END = START + timedelta(days=30)
# The invoice bench's timer (its process, its rolled-back runs), then the lists and the shared orgs.
MORE = """
    from services.core.month import Month
    from services.ledger.adapters.postgres import group_store, usage_licensees
    start, end = datetime(2026, 9, 1, tzinfo=UTC), datetime(2026, 10, 1, tzinfo=UTC)
    timed("licensee_list", lambda: usage_licensees.month_licensees(conn, Month.of(start)))
    timed("shared_orgs_lic_000", lambda: group_store.shared_org_facts(conn, [licensee], start, end))
    timed("shared_orgs_small", lambda: group_store.shared_org_facts(conn, ["small-000"], start, end))
print(json.dumps(out))"""
TIMER = invoices.TIMER.replace("\nprint(json.dumps(out))", MORE)


def small_licensees() -> list[Licensee]:
    """The small licensees: each from an hour of its own, every SHARING of them with the same orgs."""
    return [Licensee(f"small-{i:03d}", SMALL_CALLS, START + timedelta(hours=i * 7 % 700), SMALL_FLUSHES,
                     i % 6, True, f"pool-{i % (SMALL // SHARING):02d}") for i in range(SMALL)]  # fmt: skip


def prepare(conn: psycopg.Connection, partition_rows: int) -> dict[str, Any]:
    """lic-000's month and its fillers, the small licensees, an agreement each; statistics fresh."""
    seconds, facts = load(conn, partition_rows)
    small = sum(fill(conn, licensee) for licensee in small_licensees())
    for licensee in [LICENSEE, *(s.licensee_id for s in small_licensees())]:
        insert_agreement(conn, parse_agreement(agreement(licensee)))
    conn.commit()
    conn.autocommit = True
    conn.execute("VACUUM (ANALYZE) usage_entries")
    conn.execute("VACUUM (ANALYZE) usage_rollup")
    conn.autocommit = False
    held = conn.execute("SELECT count(*), (SELECT count(*) FROM usage_rollup) FROM usage_entries").fetchone()
    conn.rollback()
    rows, rollup = held or (None, None)
    return {**facts, "small_licensees": SMALL, "small_rows": small, "seconds": seconds, "usage_rows": rows,
            "rollup_rows": rollup}  # fmt: skip


def plans(conn: psycopg.Connection) -> dict[str, str]:
    """EXPLAIN (ANALYZE, BUFFERS) of the shared-org SQL of lic-000 and of a small licensee (its orgs found
    first, as group_store.shared_org_facts does)."""
    out = {}
    for name, ids in (("lic_000", [LICENSEE]), ("small", ["small-000"])):
        values = served(conn, {"ids": ids, "start": START, "end": END})
        found = conn.execute(f"EXPLAIN (ANALYZE, BUFFERS) {SHARED}", values)
        out[name] = "\n".join(row[0] for row in found)
        conn.rollback()
    return out


def run(database_url: str, trees: dict[str, Path], partition_rows: int, repeat: int, rounds: int,
        app_database_url: str | None = None) -> dict[str, Any]:  # fmt: skip
    """Fill, then time both trees in alternating rounds; medians, runs, plans, whether answers agree."""
    role = role_of(app_database_url) if app_database_url else DEFAULT_APP_ROLE
    with schema(database_url, role) as url, psycopg.connect(url) as conn:
        facts = prepare(conn, partition_rows)
        runs = alternate(trees, url, repeat, rounds, TIMER)
        explained = plans(conn)
    return {
        **facts, **compare(runs), "shared_plans": explained,
        "command": command("bench.ledger_month_licensees", trees, partition_rows, repeat, rounds),
    }  # fmt: skip


def main() -> None:
    """Run against $TOLLGATE_DATABASE_URL (or the flag); print JSON."""
    cli(__doc__, run)


if __name__ == "__main__":
    main()
