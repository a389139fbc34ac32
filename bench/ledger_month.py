"""A month of issue 13's largest licensee in the ledger: rows held, fill cost, read times, exactness.

    python -m bench.ledger_month [--database-url URL] [--partition-rows N] [--repeat 5]

September 2026 of one licensee making 65 million calls over 8 apps and 10 orgs (one government), as the
processor delivers them: aggregated deltas per hour, app, org and notice, flushed every 300 s
(bench/ledger_month_fill.py generates them set-wise in PostgreSQL). Filler licensees bring the month's
partition to N rows (default 2,000,000). Every row goes in through `usage_entries` as the owner, so the
table's own trigger links every chain; the ledger's verify then proves the licensee's. Then, as the API
answers them (median of `repeat` runs, warm): issuing the month's invoice, its draft, GET invoice, the usage
report and /v1/usage, each with EXPLAIN ANALYZE of its SQL, and every figure checked against what the
generator put in. The trigger's cost is measured on a sample: the same generated rows into usage_entries
(linked) and into a table with the same indexes and no trigger. JSON out.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from datetime import UTC, datetime
from typing import Any

import psycopg

from bench import ledger_month_plans as plans
from bench.ledger_bench import schema
from bench.ledger_month_fill import APPS, ORGS, PER_DAY, Licensee, fill
from bench.report_rows import Row
from services.ledger.adapters.postgres.chain_store import verify
from services.ledger.settings import DEFAULT_APP_ROLE, role_of

log = logging.getLogger("bench.ledger_month")
START, DAYS, CALLS = datetime(2026, 9, 1, tzinfo=UTC), 30, 65_000_000
LICENSEE, PART = "lic-000", "usage_entries_2026_09"
READS = (
    "invoice_issue_first",
    "invoice_draft",
    "invoice_get",
    "usage_report",
    "usage_month",
    "usage_day_by_app_org",
    "usage_hour_by_app",
)
COUNT = f"SELECT count(*) FROM {PART}"  # noqa: S608 - a constant of this module
SIZES = f"SELECT pg_table_size('{PART}') / 1048576, pg_indexes_size('{PART}') / 1048576"
SUMS = f"SELECT sum(calls), sum(records) FROM {PART} WHERE licensee_id = %s"  # noqa: S608 - a constant


def licensees(partition_rows: int) -> list[Licensee]:
    """The licensee of the story, then filler licensees (a quarter of its calls each) up to the row count."""
    month = DAYS * PER_DAY
    out = [Licensee(LICENSEE, CALLS, START, month)]
    left = partition_rows - out[0].rows()
    while left > 0:
        flushes = min(month, -(-left // (APPS * ORGS)))
        out.append(Licensee(f"fill-{len(out):02d}", CALLS // 4, START, flushes, len(out) % 6, False))
        left -= out[-1].rows()
    return out


def load(conn: psycopg.Connection, partition_rows: int) -> tuple[dict[str, float], dict[str, Any]]:
    """Fill the month through the chain trigger, then VACUUM ANALYZE it; seconds of each step, facts."""
    conn.execute("SELECT ledger_ensure_usage_partitions(ARRAY[%s::timestamptz])", (START,))
    conn.commit()
    started = time.perf_counter()
    stored = [fill(conn, licensee) for licensee in licensees(partition_rows)]
    seconds = {"fill": round(time.perf_counter() - started, 2)}
    started = time.perf_counter()
    conn.autocommit = True
    conn.execute(f"VACUUM (ANALYZE) {PART}")
    conn.execute("VACUUM (ANALYZE) usage_rollup")
    conn.autocommit = False
    seconds["vacuum_analyze"] = round(time.perf_counter() - started, 2)
    return seconds, {"licensees": len(stored), "fill_rows_per_s": round(sum(stored) / seconds["fill"])}


def trigger_cost(conn: psycopg.Connection, sample_flushes: int) -> dict[str, Any]:
    """Rows/s of one generated October licensee into usage_entries (the trigger links it) and into a table
    with the same indexes and no trigger."""
    conn.execute("SELECT ledger_ensure_usage_partitions(ARRAY['2026-10-01 00:00+00'::timestamptz])")
    conn.execute("CREATE TABLE bench_untriggered (LIKE usage_entries INCLUDING DEFAULTS INCLUDING INDEXES)")
    conn.commit()
    october = Licensee("lic-sample", CALLS, datetime(2026, 10, 1, tzinfo=UTC), sample_flushes)
    rates, rows = {}, 0
    for name, table in (("no_trigger", "bench_untriggered"), ("trigger", "usage_entries")):
        started = time.perf_counter()
        rows = fill(conn, october, table)
        rates[name] = round(rows / (time.perf_counter() - started))
    return {"rows": rows, "rows_per_s": rates, "ratio": round(rates["trigger"] / rates["no_trigger"], 3)}


def stored(conn: psycopg.Connection) -> dict[str, Any]:
    """Rows of the licensee and of the partition, the partition's size, and the licensee's sums."""
    count = conn.execute(COUNT + " WHERE licensee_id = %s", (LICENSEE,)).fetchone()
    total, sizes = conn.execute(COUNT).fetchone(), conn.execute(SIZES).fetchone()
    sums = conn.execute(SUMS, (LICENSEE,)).fetchone() or (None, None)
    rollup = conn.execute("SELECT count(*) FROM usage_rollup WHERE licensee_id = %s", (LICENSEE,)).fetchone()
    conn.rollback()
    return {"licensee_rows": count[0] if count else None, "partition_rows": total[0] if total else None,
            "rollup_rows": rollup[0] if rollup else None,
            "partition_mb": dict(zip(("table", "indexes"), sizes or (), strict=False)),
            "stored_calls": sums[0] and int(sums[0]), "stored_records": sums[1] and int(sums[1])}  # fmt: skip


def run(database_url: str, app_database_url: str | None = None, partition_rows: int = 2_000_000,
        repeat: int = 5, sample_flushes: int = 288) -> dict[str, Any]:  # fmt: skip
    """Fill the month, verify it, time and check the reads; the JSON document of bench.ledger_month."""
    role = role_of(app_database_url) if app_database_url else DEFAULT_APP_ROLE
    expected = Licensee(LICENSEE, CALLS, START, DAYS * PER_DAY).expected()
    with schema(database_url, role) as url, psycopg.connect(url) as conn:
        seconds, facts = load(conn, partition_rows)
        held = stored(conn)
        started = time.perf_counter()
        checked = verify(conn, LICENSEE)
        conn.rollback()
        seconds["verify_licensee"] = round(time.perf_counter() - started, 2)
        reads = plans.reads(conn, url, LICENSEE, repeat)
        cost = trigger_cost(conn, sample_flushes)
    return {
        "month": "2026-09", "licensee": LICENSEE, "licensee_calls": CALLS, "expected": expected, **facts,
        **held, "seconds": seconds, "chain_intact": checked["intact"],
        "rows_verified": checked["rows_checked"],
        "reads_ms": reads.pop("ms"), **reads, "exact": plans.exact(reads, expected), "trigger_sample": cost,
        "command": f"python -m bench.ledger_month --partition-rows {partition_rows} --repeat {repeat}",
    }  # fmt: skip


def main() -> None:
    """Run against $TOLLGATE_DATABASE_URL (or the flag); print JSON."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("TOLLGATE_DATABASE_URL", ""))
    parser.add_argument("--partition-rows", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    app_url = os.environ.get("TOLLGATE_APP_DATABASE_URL")
    print(
        json.dumps(run(args.database_url, app_url, args.partition_rows, args.repeat), indent=2, default=str)
    )


if __name__ == "__main__":
    main()


def report_rows(month: Any) -> list[Row]:
    """The month's lines of the ledger table in BENCHMARKS.md (none when the month bench did not run)."""
    if not isinstance(month, dict) or "reads_ms" not in month:
        return []
    ms, seconds, cost = month["reads_ms"], month["seconds"], month["trigger_sample"]["rows_per_s"]
    note = f"of {month['licensee_calls']:,} calls; {month['partition_rows']:,} rows in the month's partition"
    rows = [Row("usage rows of the 65 M-call month", month["licensee_rows"], "rows", target=2_000_000,
                lower_is_better=True, note=note)]  # fmt: skip
    rows += [Row(f"{name.replace('_', ' ')} (median)", ms[name], "ms", target=_target(name),
                 lower_is_better=True, note=_note(month, name)) for name in READS if name in ms]  # fmt: skip
    rows.append(Row("fill: INSERT ... SELECT generate_series through the triggers", month["fill_rows_per_s"],
                    "rows/s", note=f"VACUUM ANALYZE {seconds['vacuum_analyze']} s; chain intact: "
                    f"{month['chain_intact']}; figures exact: {month['exact']['all']}"))  # fmt: skip
    rows.append(Row("INSERT through the chain and rollup triggers (sample)", cost["trigger"], "rows/s",
                    "same indexes, no trigger", cost["no_trigger"],
                    note=f"{month['trigger_sample']['rows']:,} rows"))  # fmt: skip
    rows.append(Row("verify of the licensee's chain", seconds["verify_licensee"], "s",
                    note=f"{month['rows_verified']:,} rows"))  # fmt: skip
    return rows


def plans_text(month: dict[str, Any]) -> str:
    """The EXPLAIN ANALYZE of each read of the month, as text."""
    return "".join(f"== {name} ({plan['execution_ms']} ms)\n" + "\n".join(plan["plan"]) + "\n\n"
                   for name, plan in month.get("plans", {}).items())  # fmt: skip


def _target(name: str) -> float:
    return 300.0 if name.startswith("usage_") and name != "usage_report" else 500.0


def _note(month: dict[str, Any], name: str) -> str:
    runs = month.get("reads_runs_ms", {}).get(name)
    return f"runs {', '.join(f'{v:g}' for v in runs)}" if runs else ""
