"""Ledger scale-out: one against two ledger consumer processes splitting the billable partitions.

    python -m bench.ledger_scaleout [--database-url URL] [--bootstrap HOST:PORT] [--rows N] [--instances 1,2]

Per instance count: a fresh 6-partition topic and a fresh migrated schema; that many processes each run
`LedgerConsumer.run` in one consumer group (services/ledger/adapters/postgres/ownership.py); once the
group has settled (all 6 partitions claimed, each process holding some) the real aggregated stream's first
N deltas (bench/billable_stream.py, keyed by licensee) are produced at once with librdkafka. The rate is rows
committed between the first commit seen and the last (sampled every 0.1 s from `consumer_offsets`), so
process start and the group's join are left out; the run checks every delta was stored once, and reports
the table's bytes per row, the CPU per row of the consumers and of their PostgreSQL backends (from /proc)
and the WAL written per row (the server's, so a shared machine's other writes count too).
JSON on stdout. Not part of `make bench`: it says how far more consumers help before PostgreSQL (or the
machine) is the limit.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
from confluent_kafka import Producer  # type: ignore[import-untyped]
from kafka.admin import KafkaAdminClient

from bench.ledger_bench import billables, schema
from services.core.events import dumps
from services.ledger.adapters.kafka.consumer import LedgerConsumer
from services.ledger.settings import DEFAULT_APP_ROLE, LedgerSettings, role_of
from services.stack.kafka import create_topics

log = logging.getLogger("bench.ledger_scaleout")


# usage_entries is partitioned by month: its size is its partitions' (heap, indexes, TOAST).
SIZE = (
    "SELECT sum(pg_total_relation_size(inhrelid)) FROM pg_inherits "
    "WHERE inhparent = 'usage_entries'::regclass"
)


def wal(url: str) -> int:
    """The server's WAL position in bytes (the whole server's, so other sessions' writes count too)."""
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn").fetchone()
        return int(row[0])  # type: ignore[index]


def backends_cpu(url: str, name: str) -> float:
    """CPU seconds the PostgreSQL backends of connections named `name` have used (from /proc)."""
    with psycopg.connect(url) as conn:
        pids = [
            r[0]
            for r in conn.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s", (name,))
        ]
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def stored(url: str, topic: str) -> int:
    """Records committed on `topic`: the stored next offsets, summed."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT coalesce(sum(next_offset), 0) FROM consumer_offsets WHERE topic = %s", (topic,)
        )
        return int(row.fetchone()[0])  # type: ignore[index]


def split(url: str, topic: str, instances: int, timeout: float) -> None:
    """Wait until the 6 partitions are claimed by `instances` distinct consumers."""
    query = "SELECT count(*), count(DISTINCT owner) FROM consumer_offsets WHERE topic = %s"
    deadline = time.monotonic() + timeout
    while True:
        with psycopg.connect(url) as conn:
            claimed, owners = conn.execute(query, (topic,)).fetchone()  # type: ignore[misc]
        if (claimed, owners) == (6, instances):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{claimed} partitions claimed by {owners} consumers after {timeout:.0f}s")
        time.sleep(0.2)


def produce_fast(bootstrap: str, topic: str, deltas: list[Any]) -> None:
    """The deltas keyed by licensee with librdkafka (murmur2, as the processor's), in about a second."""
    values = [(d.licensee_id.encode(), dumps(d.to_cloudevent())) for d in deltas]
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "partitioner": "murmur2_random",
                         "linger.ms": 20, "queue.buffering.max.messages": 1_000_000})  # fmt: skip
    for key, value in values:
        producer.produce(topic, value=value, key=key)
        producer.poll(0)
    if producer.flush(60):
        raise TimeoutError("the bench's records were not all acknowledged")


def timed(url: str, topic: str, rows: int, timeout: float) -> tuple[float, int]:
    """Seconds from the first commit to the last, and the rows committed in them."""
    deadline = time.monotonic() + timeout
    first_at, first = 0.0, 0
    while (done := stored(url, topic)) < rows:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{done} of {rows} stored after {timeout:.0f}s")
        if not first and done:
            first_at, first = time.monotonic(), done
        time.sleep(0.1)
    return time.monotonic() - first_at, rows - first


def once(owner_url: str, bootstrap: str, role: str, deltas: list[Any], instances: int) -> dict[str, Any]:
    """One measurement: `instances` consumer processes drain the pre-filled topic."""
    topic = f"bench.scaleout.{uuid.uuid4().hex[:8]}"
    create_topics(bootstrap, 6, {topic: {"partitions": 6, "configs": {}}})
    try:
        with schema(owner_url, role) as url:
            wal_start = wal(url)
            tagged = f"{url}&application_name={topic}"  # the consumers' backends, found by name
            argv = [sys.executable, "-m", "bench.ledger_scaleout", "--worker", tagged, bootstrap, topic]
            workers = [subprocess.Popen(argv, stdout=subprocess.PIPE) for _ in range(instances)]  # noqa: S603
            try:
                split(url, topic, instances, 120)  # the group settled first: the run times the steady state
                produce_fast(bootstrap, topic, deltas)
                seconds, rows = timed(url, topic, len(deltas), 600)
                backend_cpu = backends_cpu(url, topic)
            finally:
                for worker in workers:
                    worker.send_signal(signal.SIGTERM)
            cpu = sum(float(w.communicate(timeout=60)[0] or 0) for w in workers)  # consumers' CPU seconds
            wal_bytes = wal(url) - wal_start
            with psycopg.connect(url) as conn:
                size = int(conn.execute(SIZE).fetchone()[0])  # type: ignore[index]
                count = conn.execute(
                    "SELECT count(DISTINCT usage_id), count(*) FROM usage_entries"
                ).fetchone()
    finally:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        admin.delete_topics([topic])
        admin.close()
    exact = count == (len({d.usage_id for d in deltas}), len(deltas))
    per_row = {
        "consumer_cpu_us_per_row": round(cpu * 1e6 / len(deltas)),
        "postgres_cpu_us_per_row": round(backend_cpu * 1e6 / len(deltas)),
        "table_bytes_per_row": round(size / len(deltas)),
        "wal_bytes_per_row": round(wal_bytes / len(deltas)),
    }
    return {
        "instances": instances,
        "rows_per_s": round(rows / seconds),
        "timed_rows": rows,
        "exact": exact,
        **per_row,
    }


def worker(url: str, bootstrap: str, topic: str) -> None:
    """One ledger consumer in the bench's group until SIGTERM."""
    settings = LedgerSettings(
        kafka_bootstrap=bootstrap,
        app_database_url=url,
        tokens_file=Path("/dev/null"),
        topic=topic,
        dlq_topic=f"{topic}.dlq",
        consumer_group="bench-scaleout",
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    started = time.process_time()  # after the imports: the consumer's own CPU, not the interpreter's start
    LedgerConsumer(settings).run(stop)
    print(time.process_time() - started)


def main() -> None:
    """Run against $TOLLGATE_DATABASE_URL and $TOLLGATE_KAFKA_BOOTSTRAP (or the flags); print JSON."""
    if len(sys.argv) == 5 and sys.argv[1] == "--worker":
        logging.basicConfig(level=logging.WARNING)
        worker(*sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("TOLLGATE_DATABASE_URL", ""))
    parser.add_argument("--bootstrap", default=os.environ.get("TOLLGATE_KAFKA_BOOTSTRAP", ""))
    parser.add_argument("--rows", type=int, default=60_000)
    parser.add_argument("--instances", default="1,2")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    app_url = os.environ.get("TOLLGATE_APP_DATABASE_URL")
    role = role_of(app_url) if app_url else DEFAULT_APP_ROLE
    deltas = billables(args.rows, uuid.uuid4().hex[:8])
    runs = [once(args.database_url, args.bootstrap, role, deltas, int(n)) for n in args.instances.split(",")]
    calls = sum(d.calls for d in deltas) / len(deltas)
    for run in runs:
        run["calls_per_s_worth"] = round(run["rows_per_s"] * calls)
    command = f"python -m bench.ledger_scaleout --rows {args.rows} --instances {args.instances}"
    print(json.dumps({"rows": args.rows, "calls_per_row": round(calls, 2), "runs": runs, "command": command}))


if __name__ == "__main__":
    main()
