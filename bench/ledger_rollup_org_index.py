"""The consumer's store with and without migration 0016's index of usage_rollup by org, alternated.

    python -m bench.ledger_rollup_org_index [--database-url URL] [--batches 10] [--batch 10000] [--rounds 3]

In each round, for migrations through 0015 and through 0016 (the order alternating), a fresh schema; a
consumer session stores `batches` consecutive batches of the real aggregated stream (bench/billable_stream.py,
the same ones for both), each committed, as the consumer does: COPY into staging and one call, which links the
chains and upserts the rollup by its statement trigger. A later batch's deltas fall into keys earlier ones
made, so the rollup gets updates as well as inserts; each batch's transaction counts its rollup updates and
how many were HOT (no index entry made). JSON on stdout: median ms a batch per variant, the ratio, the
updates and HOT updates, the 1-minute load average at each round's start.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from typing import Any

import psycopg

from bench.billable_stream import BillableStream
from bench.ledger_dupcheck import schema
from services.ledger.adapters.kafka.consumer import prepare_staging, store_usage
from services.ledger.domain.codec import UsageRow, to_row

VERSIONS = (15, 16)
# This transaction's updates of usage_rollup, and how many of them were HOT.
UPDATES = """SELECT pg_stat_get_xact_tuples_updated('usage_rollup'::regclass),
                    pg_stat_get_xact_tuples_hot_updated('usage_rollup'::regclass)"""


def batches(count: int, size: int) -> list[list[UsageRow]]:
    """`count` consecutive batches of `size` deltas of the stream, as the consumer decodes them."""
    deltas = BillableStream().deltas(count * size)
    rows = [to_row(u, "bench.billable", i % 6, i) for i, u in enumerate(deltas)]
    return [rows[i : i + size] for i in range(0, len(rows), size)]


def stores(owner_url: str, app_url: str, version: int, work: list[list[UsageRow]]) -> dict[str, Any]:
    """Each batch stored and committed on a schema through `version`: its ms, rollup updates, HOT ones."""
    out: dict[str, Any] = {"ms": [], "updates": 0, "hot_updates": 0}
    with schema(owner_url, app_url, version) as (_, app), psycopg.connect(app) as session:
        prepare_staging(session)
        session.commit()
        for rows in work:
            with session.cursor() as cursor:
                started = time.perf_counter()
                store_usage(cursor, rows)
                took = (time.perf_counter() - started) * 1000
                updates, hot = cursor.execute(UPDATES).fetchone() or (0, 0)
            session.commit()
            out["ms"].append(round(took, 1))
            out["updates"] += int(updates)
            out["hot_updates"] += int(hot)
    return out


def run(owner_url: str, app_url: str, count: int = 10, size: int = 10_000, rounds: int = 3) -> dict[str, Any]:
    """`rounds` rounds of both variants, the one that goes first alternating; medians over all batches."""
    work = batches(count, size)
    found: dict[int, list[dict[str, Any]]] = {version: [] for version in VERSIONS}
    loads = []
    for i in range(rounds):
        loads.append(round(os.getloadavg()[0], 2))
        for version in VERSIONS[:: 1 if i % 2 == 0 else -1]:
            found[version].append(stores(owner_url, app_url, version, work))
    medians = {f"through_{v:04d}": statistics.median(ms for r in runs for ms in r["ms"])
               for v, runs in found.items()}  # fmt: skip
    return {
        "batches": count, "batch_rows": size, "rounds": rounds, "median_ms_a_batch": medians,
        "ratio_0016_to_0015": round(medians["through_0016"] / medians["through_0015"], 3),
        "rollup_updates": {f"through_{v:04d}": [(r["updates"], r["hot_updates"]) for r in runs]
                           for v, runs in found.items()},
        "runs_ms": {f"through_{v:04d}": [r["ms"] for r in runs] for v, runs in found.items()},
        "load_1min_at_round_start": loads, "load_after": round(os.getloadavg()[0], 2),
        "command": f"python -m bench.ledger_rollup_org_index --batches {count} --batch {size} "
                   f"--rounds {rounds}",
    }  # fmt: skip


def main() -> None:
    """Run against $TOLLGATE_DATABASE_URL and $TOLLGATE_APP_DATABASE_URL; print JSON."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("TOLLGATE_DATABASE_URL", ""))
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    app_url = os.environ.get("TOLLGATE_APP_DATABASE_URL", "")
    print(json.dumps(run(args.database_url, app_url, args.batches, args.batch, args.rounds), indent=2))


if __name__ == "__main__":
    main()
