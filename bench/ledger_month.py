"""A month of issue 13's largest licensee in the ledger: rows held, bulk load cost, and read times.

    python -m bench.ledger_month [--database-url URL] [--partition-rows N] [--repeat 5]

September 2026 of one licensee making 65 million calls over 8 apps and 10 orgs (one government), delivered
as the processor does (bench/billable_stream.py: aggregated deltas per hour, app, org and notice, flushed
every 300 s). Its rows, linked as the chain trigger links them (bench/ledger_month_rows.py), are COPYed into
a table that is then ATTACHed as the month's partition; filler licensees bring the partition to N rows
(default 2,000,000). The ledger's own verify proves the chains. Then, as the API answers them (median of
`repeat` runs, warm): issuing the month's invoice (its draft), GET invoice, the usage report and
/v1/usage, each with EXPLAIN ANALYZE of its SQL. The trigger's cost is measured on a sample: the same
rows COPYed through usage_entries (the trigger links them) against a table without triggers. JSON out.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from datetime import UTC, datetime
from itertools import islice
from typing import Any

import psycopg

from bench import ledger_month_plans as plans
from bench.ledger_bench import schema
from bench.ledger_month_rows import Chainer, month_deltas, month_shape, relabel
from bench.report_rows import Row
from services.core.events import UsageRecorded
from services.ledger.chain_store import verify
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
COLUMNS = """SELECT attname FROM pg_attribute WHERE attrelid = 'usage_entries'::regclass AND attnum > 0
    AND NOT attisdropped ORDER BY attnum"""


def _timed(seconds: dict[str, float], name: str, started: float) -> None:
    seconds[name] = round(time.perf_counter() - started, 2)


def generate(columns: list[str], partition_rows: int) -> tuple[list[tuple[Any, ...]], dict[str, int]]:
    """The licensee's month, then filler licensees' up to `partition_rows` rows, chained."""
    chainer = Chainer(columns)
    big = list(month_deltas(month_shape(START, CALLS, DAYS), DAYS))
    rows = [chainer.row(u, 0, i) for i, u in enumerate(big)]
    facts = {"licensee_rows": len(rows), "licensee_calls": sum(u.calls for u in big)}
    filler = 0
    while len(rows) < partition_rows:
        filler += 1
        more: list[UsageRecorded] = list(islice(big, partition_rows - len(rows)))
        rows += [chainer.row(relabel(u, f"fill-{filler:02d}", str(filler)), 1, i) for i, u in enumerate(more)]
    facts["filler_licensees"] = filler
    return rows, facts


def load(conn: psycopg.Connection, columns: list[str], rows: list[tuple[Any, ...]]) -> dict[str, float]:
    """COPY into a standalone table, ATTACH it as the month, VACUUM ANALYZE; seconds of each step."""
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    conn.execute(f"CREATE TABLE {PART} (LIKE usage_entries INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
    with conn.cursor() as cursor, cursor.copy(f"COPY {PART} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
    conn.commit()
    _timed(seconds, "copy", started)
    started = time.perf_counter()
    conn.execute(f"ALTER TABLE usage_entries ATTACH PARTITION {PART} FOR VALUES FROM "
                 "('2026-09-01 00:00+00') TO ('2026-10-01 00:00+00')")  # fmt: skip
    conn.execute("SELECT ledger_usage_partition_triggers(%s)", (PART,))
    conn.commit()
    _timed(seconds, "attach_and_index", started)
    started = time.perf_counter()
    conn.autocommit = True
    conn.execute(f"VACUUM (ANALYZE) {PART}")
    conn.autocommit = False
    _timed(seconds, "vacuum_analyze", started)
    return seconds


def trigger_cost(conn: psycopg.Connection, columns: list[str], sample: int) -> dict[str, Any]:
    """Rows/s of `sample` October rows COPYed through usage_entries (linked by the trigger) and into a
    table without triggers; the chain columns are left for the trigger to fill."""
    shape = month_shape(datetime(2026, 10, 1, tzinfo=UTC), CALLS, 31)
    usages = list(islice(month_deltas(shape, 1, seed=14), sample))
    chainer = Chainer(columns)
    own = [c for c in columns if c not in ("chain_seq", "prev_hash", "row_hash")]
    keep = [columns.index(c) for c in own]
    rows = [tuple(full[i] for i in keep) for full in (chainer.row(u, 2, n) for n, u in enumerate(usages))]
    conn.execute("SELECT ledger_ensure_usage_partitions(ARRAY['2026-10-01 00:00+00'::timestamptz])")
    conn.execute("CREATE TABLE bench_untriggered (LIKE usage_entries INCLUDING DEFAULTS)")
    conn.commit()
    rates = {}
    for name, table in (("trigger", "usage_entries"), ("no_trigger", "bench_untriggered")):
        started = time.perf_counter()
        with conn.cursor() as cursor, cursor.copy(f"COPY {table} ({', '.join(own)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        conn.commit()
        rates[name] = round(len(rows) / (time.perf_counter() - started))
    return {"rows": len(rows), "rows_per_s": rates, "ratio": round(rates["trigger"] / rates["no_trigger"], 3)}


def run(database_url: str, app_database_url: str | None = None, partition_rows: int = 2_000_000,
        repeat: int = 5, sample: int = 20_000) -> dict[str, Any]:  # fmt: skip
    """Load the month, verify it, time the reads; the JSON document of bench.ledger_month."""
    role = role_of(app_database_url) if app_database_url else DEFAULT_APP_ROLE
    with schema(database_url, role) as url, psycopg.connect(url) as conn:
        columns = [row[0] for row in conn.execute(COLUMNS)]
        started = time.perf_counter()
        rows, facts = generate(columns, partition_rows)
        seconds = {"generate_and_link": round(time.perf_counter() - started, 2)}
        seconds |= load(conn, columns, rows)
        del rows
        count = conn.execute(COUNT + " WHERE licensee_id = %s", (LICENSEE,)).fetchone()
        total = conn.execute(COUNT).fetchone()
        sizes = conn.execute(SIZES).fetchone()
        started = time.perf_counter()
        checked = verify(conn, LICENSEE)
        conn.rollback()
        _timed(seconds, "verify_licensee", started)
        reads = plans.reads(conn, url, LICENSEE, repeat)
        cost = trigger_cost(conn, columns, sample)
    stored = {
        "licensee_rows": count[0] if count else None,
        "partition_rows": total[0] if total else None,
        "partition_mb": dict(zip(("table", "indexes"), sizes or (), strict=False)),
    }
    return {
        "month": "2026-09", "licensee": LICENSEE, **facts, **stored, "seconds": seconds,
        "chain_intact": checked["intact"], "rows_verified": checked["rows_checked"],
        "load_rows_per_s": round(partition_rows / seconds["copy"]), "reads_ms": reads.pop("ms"), **reads,
        "trigger_sample": cost, "command": f"python -m bench.ledger_month --partition-rows {partition_rows} "
        f"--repeat {repeat}",
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
    rows += [Row(f"{name.replace('_', ' ')} (median)", ms[name], "ms", target=500.0, lower_is_better=True)
             for name in READS if name in ms]  # fmt: skip
    rows.append(Row("bulk load: COPY with chains linked in Python", month["load_rows_per_s"], "rows/s",
                    note=f"then ATTACH + indexes {seconds['attach_and_index']} s, VACUUM ANALYZE "
                    f"{seconds['vacuum_analyze']} s; chain intact: {month['chain_intact']}"))  # fmt: skip
    rows.append(Row("COPY through the chain trigger (sample)", cost["trigger"], "rows/s", "COPY, no triggers",
                    cost["no_trigger"], note=f"{month['trigger_sample']['rows']:,} rows"))  # fmt: skip
    rows.append(Row("verify of the licensee's chain", seconds["verify_licensee"], "s",
                    note=f"{month['rows_verified']:,} rows"))  # fmt: skip
    return rows
