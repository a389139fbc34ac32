"""Where the usage chain's cost lies inside ledger_append_usage(): the migrated function against variants.

    python -m bench.ledger_chain_variants [--rows 10000] [--runs 9]

On a fresh migrated schema of the stack in $TOLLGATE_DATABASE_URL: one batch of `--rows` deltas of the
processor's aggregated stream (bench/billable_stream.py) is stored first, so every licensee has a head,
and a second batch is staged. Each run times `SELECT ledger_append_usage()` on that staged batch once per
variant, each inside its own transaction that is rolled back (the variant's DDL too), and checks every
link it wrote by recomputing it in Python (services.ledger.domain.chain). Variants:

- `ledger`: the migrated function (0015);
- `text_only`: its loop without the SHA-256 (each row's text form still built);
- `no_hash`: its loop without the text form and the hash (rows linked to a placeholder);
- `set_insert`: no loop: one INSERT ... SELECT with chain_seq by a window, no hash;
- `window`: the chain computed set-based, a window aggregate (bench/sql/ledger_chain_window.sql);
- `unchained`: bench.ledger_bench's write path before the chains (trigger and CHECK dropped).

Prints JSON: µs per row (median and minimum of the runs) and whether each variant's links verify.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import psycopg

from bench.billable_stream import BillableStream
from bench.ledger_bench import WITHOUT_CHAIN, schema
from services.ledger.adapters.kafka.consumer import COPY_STAGING, STAGING_DDL
from services.ledger.domain.chain import link_hash
from services.ledger.domain.codec import USAGE_TYPES, to_row
from services.ledger.settings import DEFAULT_APP_ROLE

MIGRATION = Path(__file__).parents[1] / "services/ledger/adapters/postgres/migrations"
WINDOW = Path(__file__).parent / "sql/ledger_chain_window.sql"
_TEXT = "        content := convert_to('usage_entries' || E'\\n' || r::text, 'UTF8');\n"
_HASH = "        prev := encode(sha256(content), 'hex');\n"
_LINKED = "        r.row_hash := prev;\n"


def variants() -> dict[str, str | None]:
    """Each variant's DDL (None: the schema as migrated)."""
    text = (MIGRATION / "0015_usage_duplicate_check_alone.sql").read_text()
    start = text.index("CREATE OR REPLACE FUNCTION ledger_append_usage()")
    current = text[start : text.index("$$;", start) + 3]
    loop_start = current.index("    -- The columns in the table's order")
    set_insert = current[:loop_start] + _SET_INSERT + current[current.index("END;\n$$;") :]
    return {
        "ledger": None,
        "text_only": current.replace(_HASH, "        prev := prev;\n"),
        "no_hash": current[: current.index(_TEXT)] + current[current.index(_LINKED) :],
        "set_insert": set_insert,
        "window": _window(current, loop_start),
        "unchained": ";\n".join(WITHOUT_CHAIN) + ";\n",
    }


def _window(current: str, loop_start: int) -> str:
    """The aggregate of ledger_chain_window.sql, and 0015's function with its INSERT in place of the loop."""
    aggregate, insert = WINDOW.read_text().split("-- INSERT\n")
    body = insert + "    GET DIAGNOSTICS i = ROW_COUNT;\n    RETURN i;\n"
    return aggregate + current[:loop_start] + body + current[current.index("END;\n$$;") :]


_SET_INSERT = """    INSERT INTO usage_entries
    SELECT s.usage_id, s.licensee_id, s.app_id, s.period_start, s.period_end, s.occurred_at, s.calls,
           s.records, s.org_id, s.org_type, s.source_event_source, s.source_event_id, s.kafka_topic,
           s.kafka_partition, s.kafka_offset, now(),
           hd.seq + row_number() OVER (PARTITION BY s.licensee_id ORDER BY s.kafka_partition, s.kafka_offset),
           hd.hash, hd.hash, s.first_event_at, s.last_event_at, s.government_notified, s.source_topic,
           s.source_partition, s.source_first_offset, s.source_last_offset
    FROM (SELECT DISTINCT ON (usage_id) * FROM pg_temp.ledger_usage_staging
          ORDER BY usage_id, kafka_partition, kafka_offset) AS s
    JOIN unnest(licensees, seqs, hashes) AS hd (licensee_id, seq, hash) USING (licensee_id)
    WHERE NOT EXISTS (SELECT 1 FROM unnest(stored) AS d (usage_id) WHERE d.usage_id = s.usage_id)
    ORDER BY s.licensee_id, s.kafka_partition, s.kafka_offset;
    GET DIAGNOSTICS i = ROW_COUNT;
    RETURN i;
"""


def broken_links(cur: psycopg.Cursor[Any]) -> int:
    """Rows whose seq, prev_hash or row_hash does not follow from the row before and its own text."""
    cur.execute("SET LOCAL timezone TO 'UTC'")
    cur.execute("SET LOCAL datestyle TO 'ISO, YMD'")
    cur.execute("SELECT licensee_id, chain_seq, prev_hash, row_hash, u::text FROM usage_entries u "
                "ORDER BY licensee_id, chain_seq")  # fmt: skip
    broken, last = 0, {}
    for licensee, seq, prev, row, text in cur.fetchall():
        head = last.get(licensee)
        follows = head is None or (head[0] + 1 == seq and head[1] == prev)
        content = text.replace(f",{prev},{row},", f",{prev},,", 1)
        if row is None or not follows or link_hash("usage_entries", content) != row:
            broken += 1
        last[licensee] = (seq or 0, row)
    return broken


def stage(cur: psycopg.Cursor[Any], rows: list[Any]) -> None:
    """COPY `rows` into the session's staging table, as the ledger consumer does."""
    with cur.copy(COPY_STAGING) as copy:
        copy.set_types(list(USAGE_TYPES))
        for row in rows:
            copy.write_row(row)


def measure(owner_url: str, rows: int, runs: int) -> dict[str, Any]:
    """µs per row of each variant over `runs` alternated runs, and its broken links."""
    deltas = list(BillableStream().deltas(rows * 2))
    halves = (deltas[:rows], deltas[rows:])
    batches = [
        [to_row(d, "bench", i % 6, n * rows + i) for i, d in enumerate(half)] for n, half in enumerate(halves)
    ]
    timings: dict[str, list[float]] = {name: [] for name in variants()}
    broken: dict[str, int] = {}
    with schema(owner_url, DEFAULT_APP_ROLE) as url, psycopg.connect(url) as conn:
        cur = conn.cursor()
        cur.execute(STAGING_DDL.replace("ON COMMIT DELETE ROWS", "ON COMMIT PRESERVE ROWS"))
        stage(cur, batches[0])
        cur.execute("SELECT ledger_append_usage()")
        cur.execute("TRUNCATE ledger_usage_staging")
        stage(cur, batches[1])
        cur.execute("ANALYZE usage_entries")
        conn.commit()
        name_of_schema = cur.execute("SELECT current_schema()").fetchone()[0]  # type: ignore[index]
        for _ in range(runs):
            for name, ddl in variants().items():
                if ddl is not None:
                    cur.execute(ddl.replace("{schema}", name_of_schema))
                started = time.perf_counter()
                stored = cur.execute("SELECT ledger_append_usage()").fetchone()[0]  # type: ignore[index]
                timings[name].append(time.perf_counter() - started)
                if stored != rows:
                    raise RuntimeError(f"{name} stored {stored} rows of {rows}")
                broken.setdefault(name, broken_links(cur))
                conn.rollback()
    return {
        name: {"median_us_per_row": round(statistics.median(t) / rows * 1e6, 2),
               "min_us_per_row": round(min(t) / rows * 1e6, 2), "broken_links": broken[name]}
        for name, t in timings.items()
    }  # fmt: skip


def main() -> None:
    """Parse the arguments, measure, print JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    result = measure(os.environ["TOLLGATE_DATABASE_URL"], args.rows, args.runs)
    print(json.dumps({"rows": args.rows, "runs": args.runs, "variants": result}, indent=2))


if __name__ == "__main__":
    main()
