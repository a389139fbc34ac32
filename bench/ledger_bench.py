"""Ledger throughput: billable messages drained from Kafka into PostgreSQL against a plain COPY.

    python -m bench.ledger_bench [--database-url URL] [--bootstrap HOST:PORT] [--rows N] [--runs 3]
                                 [--stream aggregated|per-call]

The stream is the processor's real one (bench/billable_stream.py): aggregated deltas of a day of 200
Zipf-skewed licensees, 8 apps and 10 orgs each, hourly buckets, flushed every 300 s; N is the number of
deltas (the day's first ones). `--stream per-call` is the old one row per call. Each run pre-produces the N
messages on a fresh 6-partition topic, then times `LedgerConsumer.drain` (decode, checks, COPY into
staging, the one call that links and inserts the new rows, the rollup trigger, offsets, commit) from start
to the last commit; then the same drain with the chain dropped (its trigger, its CHECK, and a
ledger_append_usage that inserts the same rows unlinked), with the rollup dropped too, and with the chain
dropped by a consumer that stores each batch before reading the next (the write path before the chains
and before the write ahead, issue 16 item 4), and with nothing dropped by that consumer (what the write
ahead gains). The baseline COPYs the same rows straight into
`usage_entries` of a fresh schema in one transaction (both triggers fire for COPY's rows too). All of them
alternate within each run. Rows/s, and the calls/s those rows are worth, are medians of the runs; JSON on
stdout.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient
from psycopg import sql

from bench.billable_stream import BillableStream
from bench.report_rows import Row
from services.core.events import ApiCall, UsageRecorded, dumps
from services.ledger.adapters.kafka.consumer import LedgerConsumer
from services.ledger.adapters.postgres.migrate import apply_migrations
from services.ledger.domain.codec import USAGE_COLUMNS, USAGE_TYPES, to_row
from services.ledger.settings import DEFAULT_APP_ROLE, LedgerSettings, role_of
from services.stack.kafka import create_topics

log = logging.getLogger("bench.ledger")
START = datetime(2026, 9, 1, tzinfo=UTC)
# The write path as it was before the hash chains (issue 16 item 4 compares with it): the same schema with
# the chain trigger and its CHECK dropped, as the owner, on the run's throwaway schema only, and the
# consumer's one call (ledger_append_usage, migration 0013) storing the same rows without linking them. Its
# duplicate check is the ledger's own function (ledger_usage_stored, migration 0015, which carries the probe
# settings), so both variants check duplicates alike by construction and no settings are kept in step here.
UNCHAINED_APPEND = f"""CREATE OR REPLACE FUNCTION ledger_append_usage() RETURNS bigint LANGUAGE plpgsql
    SECURITY DEFINER AS $$
DECLARE
    stored bigint;
    known text[] := ledger_usage_stored(ARRAY(SELECT usage_id FROM pg_temp.ledger_usage_staging));
BEGIN
    INSERT INTO usage_entries ({", ".join(USAGE_COLUMNS)})
    SELECT {", ".join(USAGE_COLUMNS)} FROM (SELECT DISTINCT ON (usage_id) * FROM pg_temp.ledger_usage_staging
        ORDER BY usage_id, kafka_partition, kafka_offset) AS s
    WHERE NOT EXISTS (SELECT 1 FROM unnest(known) AS d (usage_id) WHERE d.usage_id = s.usage_id)
    ORDER BY licensee_id, kafka_partition, kafka_offset;
    GET DIAGNOSTICS stored = ROW_COUNT;
    RETURN stored;
END $$"""  # noqa: S608 - constants of this module
WITHOUT_CHAIN = (
    "ALTER TABLE usage_entries DROP CONSTRAINT usage_entries_chained",
    "DROP TRIGGER usage_entries_chain_link ON usage_entries",
    UNCHAINED_APPEND,
)
# And without the read rollup's trigger (migration 0012) as well: what the rollup costs the write path.
WITHOUT_ROLLUP = (*WITHOUT_CHAIN, "DROP TRIGGER usage_entries_rollup ON usage_entries")


class OneBatchAtATime(LedgerConsumer):
    """The consumer before its write ahead: each batch stored before the next one is read."""

    def step(self) -> int:
        """The consumer's step, then a wait for its batch to commit."""
        handled = super().step()
        self._settle()  # the bench's variant only; the service always writes ahead
        return handled


# name: (statements dropping parts of the schema, the consumer). "before" is the write path as it was before
# the chains and before the write ahead: the baseline issue 16 item 4 names ("today's" when it was filed);
# "sequential" is today's schema without the write ahead: what the write ahead gains.
VARIANTS: dict[str, tuple[tuple[str, ...], type[LedgerConsumer]]] = {
    "ledger": ((), LedgerConsumer), "unchained": (WITHOUT_CHAIN, LedgerConsumer),
    "bare": (WITHOUT_ROLLUP, LedgerConsumer), "before": (WITHOUT_CHAIN, OneBatchAtATime),
    "sequential": ((), OneBatchAtATime),
}  # fmt: skip
TARGET_CALLS_PER_S = 40_000  # issue 13 item 3


def billables(count: int, run: str, stream: str = "aggregated") -> list[UsageRecorded]:
    """`count` distinct billable deltas: the aggregated stream's first, or one per call over 60 licensees."""
    if stream == "aggregated":
        return list(BillableStream().deltas(count))
    out = []
    for i in range(count):
        at = START + timedelta(seconds=i % (29 * 86400))
        call = ApiCall(f"{run}-{i}", "bench-gw", at, f"lic-{i % 60}", f"app-{i % 7}", "/x", "GET", 200, 5,
                       100, f"org-{i % 11}", "commercial")  # fmt: skip
        bucket = at.replace(minute=0, second=0, microsecond=0)
        out.append(UsageRecorded.for_call(call, bucket, bucket + timedelta(hours=1)))
    return out


@contextmanager
def schema(owner_url: str, app_role: str) -> Iterator[str]:
    """A fresh migrated schema; yields the owner URL pointing at it; dropped afterwards."""
    name = f"bench_ledger_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(owner_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    url = f"{owner_url}{'&' if '?' in owner_url else '?'}options={quote(f'-csearch_path={name}')}"
    try:
        apply_migrations(url, app_role)
        yield url
    finally:
        with psycopg.connect(owner_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))


def produce(bootstrap: str, topic: str, usages: list[UsageRecorded]) -> None:
    """Publish with acks=all, keyed by licensee like the processor does."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20, batch_size=512 * 1024)
    for usage in usages:
        producer.send(topic, key=usage.licensee_id.encode(), value=dumps(usage.to_cloudevent()))
    producer.flush(timeout=120)
    producer.close()


def ledger_once(
    owner_url: str, bootstrap: str, app_role: str, usages: list[UsageRecorded], drop: tuple[str, ...] = (),
    kind: type[LedgerConsumer] = LedgerConsumer,
) -> float:
    """Rows/s of the ledger consumer draining the pre-produced `usages`, on a schema without `drop`."""
    topic = f"bench.ledger.{uuid.uuid4().hex[:8]}"
    rows = len(usages)
    create_topics(bootstrap, 6, {topic: {"partitions": 6, "configs": {}}})
    try:
        produce(bootstrap, topic, usages)
        with schema(owner_url, app_role) as url:
            with psycopg.connect(url) as conn:
                for statement in drop:
                    conn.execute(statement)
            settings = LedgerSettings(
                kafka_bootstrap=bootstrap,
                app_database_url=url,
                tokens_file=Path("/dev/null"),
                topic=topic,
                dlq_topic=topic + ".dlq",
            )
            consumer = kind(settings)
            started = time.perf_counter()
            consumer.drain(timeout=600)
            seconds = time.perf_counter() - started
            consumer.close()
            with psycopg.connect(url) as conn:
                stored = conn.execute("SELECT count(*) FROM usage_entries").fetchone()
            assert stored is not None and stored[0] == rows, f"stored {stored}, expected {rows}"
    finally:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        admin.delete_topics([topic])
        admin.close()
    return rows / seconds


def copy_once(owner_url: str, app_role: str, usages: list[UsageRecorded]) -> float:
    """Rows/s of one plain binary COPY of the same rows into `usage_entries`."""
    data = [to_row(u, "bench", i % 6, i) for i, u in enumerate(usages)]
    rows = len(data)
    with schema(owner_url, app_role) as url, psycopg.connect(url) as conn:
        started = time.perf_counter()
        with (
            conn.cursor() as cursor,
            cursor.copy(
                f"COPY usage_entries ({', '.join(USAGE_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
            ) as copy,
        ):
            copy.set_types(list(USAGE_TYPES))
            for row in data:
                copy.write_row(row)
        conn.commit()
        return rows / (time.perf_counter() - started)


def run(database_url: str, bootstrap: str, rows: int = 100_000, runs: int = 3,
        app_database_url: str | None = None, stream: str = "aggregated") -> dict[str, Any]:  # fmt: skip
    """Median ledger and COPY rows/s (and calls/s worth) over `runs` runs, and their ratio."""
    role = role_of(app_database_url) if app_database_url else DEFAULT_APP_ROLE
    usages = billables(rows, uuid.uuid4().hex[:8], stream)
    per_row = sum(u.calls for u in usages) / rows
    rates: dict[str, list[float]] = {name: [] for name in (*VARIANTS, "copy")}
    for _ in range(runs):  # interleaved, so a change of load moves them all alike
        for name, (drop, kind) in VARIANTS.items():
            rates[name].append(ledger_once(database_url, bootstrap, role, usages, drop, kind))
        rates["copy"].append(copy_once(database_url, role, usages))
    ledger, copy = rates["ledger"], rates["copy"]
    med = {name: statistics.median(values) for name, values in rates.items()}
    med_ledger, med_copy, med_unchained = med["ledger"], med["copy"], med["unchained"]
    return {
        "stream": stream, "rows": rows, "calls": sum(u.calls for u in usages), "runs": runs,
        "licensees": len({u.licensee_id for u in usages}),
        "ledger_rows_per_s": [round(v) for v in ledger], "copy_rows_per_s": [round(v) for v in copy],
        "unchained_rows_per_s": [round(v) for v in rates["unchained"]],
        "bare_rows_per_s": [round(v) for v in rates["bare"]],
        "before_rows_per_s": [round(v) for v in rates["before"]],
        "sequential_rows_per_s": [round(v) for v in rates["sequential"]], "load_average": os.getloadavg(),
        "median": {"ledger_rows_per_s": round(med_ledger), "copy_rows_per_s": round(med_copy),
                   "unchained_rows_per_s": round(med_unchained), "bare_rows_per_s": round(med["bare"]),
                   "chain_ratio": round(med_ledger / med_unchained, 3),
                   # Each run's own ratio (its drains minutes apart), then their median: a load that
                   # changes between runs moves both drains of a run alike.
                   "chain_ratio_of_runs": round(statistics.median(
                       a / b for a, b in zip(ledger, rates["unchained"], strict=True)), 3),
                   "chain_and_rollup_ratio": round(med_ledger / med["bare"], 3),
                   "before_rows_per_s": round(med["before"]),
                   "ratio_to_before": round(med_ledger / med["before"], 3),
                   "ratio_to_before_of_runs": round(statistics.median(
                       a / b for a, b in zip(ledger, rates["before"], strict=True)), 3),
                   "sequential_rows_per_s": round(med["sequential"]),
                   "write_ahead_gain": round(med_ledger / med["sequential"], 3),
                   "write_ahead_gain_of_runs": round(statistics.median(
                       a / b for a, b in zip(ledger, rates["sequential"], strict=True)), 3),
                   "ratio": round(med_ledger / med_copy, 3), "calls_per_row": round(per_row, 2),
                   "ledger_calls_per_s": round(med_ledger * per_row),
                   "copy_calls_per_s": round(med_copy * per_row)},
        "command": f"python -m bench.ledger_bench --rows {rows} --runs {runs} --stream {stream}",
    }  # fmt: skip


def report_rows(result: dict[str, Any]) -> list[Row]:
    """The write path's lines of the ledger table in BENCHMARKS.md: calls/s worth against the target, rows/s
    against COPY, and what the chain and the rollup cost (the same drain without them, same run)."""
    med, runs = result["median"], result["ledger_rows_per_s"]
    per_row, copy = med["calls_per_row"], med["copy_rows_per_s"]
    note = f"{result['rows']:,} deltas of {result['calls']:,} calls ({per_row} a delta); runs (rows/s) {runs}"
    return [
        Row("plain COPY (baseline)", med["copy_calls_per_s"], "calls/s worth", note=f"{copy:,} rows/s"),
        Row("ledger consumer into PostgreSQL", med["ledger_calls_per_s"], "calls/s worth", "plain COPY",
            med["copy_calls_per_s"], TARGET_CALLS_PER_S, note=note),
        Row("rows/s of the ledger consumer", med["ledger_rows_per_s"], "rows/s", "plain COPY", copy),
        Row("ledger consumer, chain dropped", med["unchained_rows_per_s"], "rows/s",
            note=f"runs {result['unchained_rows_per_s']}; ledger / this = {med['chain_ratio']} (median of "
                 f"the runs' own ratios {med.get('chain_ratio_of_runs')})"),
        Row("ledger consumer, chain and rollup triggers dropped", med["bare_rows_per_s"], "rows/s",
            note=f"runs {result['bare_rows_per_s']}; ledger / this = {med['chain_and_rollup_ratio']}"),
        *_before_row(result),
    ]  # fmt: skip


def _before_row(result: dict[str, Any]) -> list[Row]:
    """The write path before the chains and the write ahead (results from before it have no such line)."""
    med = result["median"]
    if "before_rows_per_s" not in med:
        return []
    rows = [Row("ledger consumer before the chains and the write ahead", med["before_rows_per_s"], "rows/s",
                note=f"runs {result['before_rows_per_s']}; ledger / this = {med['ratio_to_before']} (median "
                     f"of the runs' own ratios {med['ratio_to_before_of_runs']})")]  # fmt: skip
    if "sequential_rows_per_s" in med:
        rows.append(Row("ledger consumer without the write ahead", med["sequential_rows_per_s"], "rows/s",
                        note=f"runs {result['sequential_rows_per_s']}; ledger / this = "
                             f"{med['write_ahead_gain']} (median of the runs' own ratios "
                             f"{med['write_ahead_gain_of_runs']})"))  # fmt: skip
    return rows


def main() -> None:
    """Run against $TOLLGATE_DATABASE_URL and $TOLLGATE_KAFKA_BOOTSTRAP (or the flags); print JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("TOLLGATE_DATABASE_URL", ""))
    parser.add_argument("--bootstrap", default=os.environ.get("TOLLGATE_KAFKA_BOOTSTRAP", ""))
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--stream", choices=("aggregated", "per-call"), default="aggregated")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    app_url = os.environ.get("TOLLGATE_APP_DATABASE_URL")
    result = run(args.database_url, args.bootstrap, args.rows, args.runs, app_url, args.stream)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
