"""Ingest throughput: events/s over HTTP into Kafka (acks=all) against a raw kafka-python producer.

`python -m bench.ingest_bench --bootstrap HOST:PORT` prints JSON. Each figure is the median of three runs.
`tollgate serve ingest` runs with 1 and with 2 processes (`TOLLGATE_INGEST_WORKERS`); besides events/s
each run reports events per CPU second of the ingest processes, which the raw producer's events per CPU
second of its own process compare with whatever else the shared cores are doing.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import logging
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
from kafka import KafkaProducer

from bench.ingest_service import ServedIngest, ingest_process
from services.core.tokens import Principal
from services.demo.scenario import demo_calls
from services.ingest.errors import IngestError
from services.ingest.validation import accept
from services.stack.kafka import create_topics

log = logging.getLogger("bench.ingest")
BATCH_TYPE = "application/cloudevents-batch+json"
# More than the producer's 32 MB buffer holds (about 1 KB an event): a run that fits in it times the
# raw producer's appends, not its sustained rate (20,000-event runs made it look up to 27% faster).
EVENTS_PER_RUN = 100_000


def make_events(count: int, run: str) -> list[dict[str, Any]]:
    """`count` demo api-call envelopes with ids unique to `run`, so nothing is a duplicate."""
    calls = demo_calls()
    events = []
    for n in range(count):
        event = calls[n % len(calls)].to_cloudevent()
        event["id"] = f"{run}-{n}"
        events.append(event)
    return events


def http_rate(url: str, token: str, events: list[dict[str, Any]], batch: int, clients: int) -> float:
    """Events/s of `clients` concurrent posters sending `events` in batches of `batch`; all must be 202."""
    bodies = [orjson.dumps(events[i : i + batch]) for i in range(0, len(events), batch)]
    headers = {"Content-Type": BATCH_TYPE, "Authorization": f"Bearer {token}"}

    def post_share(share: list[bytes]) -> None:
        with httpx.Client(timeout=60.0, headers=headers) as client:
            for body in share:
                response = client.post(f"{url}/v1/events", content=body)
                if response.status_code != 202:
                    raise IngestError(f"ingest answered {response.status_code}: {response.text[:300]}")

    shares = [bodies[i::clients] for i in range(clients)]
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        list(pool.map(post_share, shares))
    return len(events) / (time.perf_counter() - started)


def raw_rate(bootstrap: str, topic: str, events: list[dict[str, Any]]) -> tuple[float, float]:
    """Events/s and events per CPU second of one kafka-python producer with ingest's settings, serializing,
    awaiting every ack (the CPU of this whole process: the producer's I/O thread included)."""
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        batch_size=256 * 1024,
        max_in_flight_requests_per_connection=5,
    )
    try:
        producer.partitions_for(topic)
        started, cpu = time.perf_counter(), time.process_time()
        futures = [
            producer.send(topic, key=e["data"]["licensee_id"].encode(), value=orjson.dumps(e)) for e in events
        ]
        producer.flush()
        for future in futures:
            future.get(timeout=60)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        return len(events) / seconds, len(events) / cpu
    finally:
        producer.close()


def served_rate(
    served: ServedIngest, events: list[dict[str, Any]], batch: int, clients: int
) -> tuple[float, float]:
    """Events/s over HTTP and events per CPU second of the service's processes."""
    cpu = served.cpu_seconds()
    rate = http_rate(served.url, served.token, events, batch, clients)
    return rate, len(events) / max(served.cpu_seconds() - cpu, 1e-3)


def validation_seconds(batch: int = 1000, repeats: int = 20) -> float:
    """Median seconds to parse, check and dedupe one `batch`-event body (no I/O)."""
    body = orjson.dumps(make_events(batch, "validation"))
    principal = Principal("bench", "bench", "ingest")
    now = datetime(2026, 11, 1, tzinfo=UTC)
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        accept("batch", body, principal, now, batch, timedelta(minutes=5))
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def _median_of(runs: int, measure: Callable[[str], tuple[float, float]]) -> dict[str, Any]:
    samples = [measure(uuid.uuid4().hex[:8]) for _ in range(runs)]
    rates, per_cpu = [s[0] for s in samples], [s[1] for s in samples]
    return {
        "median": round(statistics.median(rates)),
        "runs": [round(r) for r in rates],
        "events_per_cpu_s": round(statistics.median(per_cpu)),
        "events_per_cpu_s_runs": [round(r) for r in per_cpu],
    }


def _served_medians(
    served: ServedIngest, workers: int, raw: dict[str, Any], options: dict[str, Any]
) -> dict[str, Any]:
    """Each batch size's medians through one service, with ratios to the raw producer's."""
    events, clients, runs = options["events"], options["clients"], options["runs"]
    # Every worker connects to Kafka and warms up before anything is timed.
    http_rate(served.url, served.token, make_events(min(events, 4000), f"warm-{workers}"), 100, 2 * clients)
    results: dict[str, Any] = {"http": {}}
    for batch in options["batches"]:

        def measure(tag: str, size: int = batch) -> tuple[float, float]:
            return served_rate(served, make_events(events, f"w{workers}-b{size}-{tag}"), size, clients)

        http = _median_of(runs, measure)
        http["ratio_to_raw"] = round(http["median"] / raw["median"], 3)
        http["per_process"] = round(http["median"] / workers)
        http["per_process_ratio_to_raw"] = round(http["per_process"] / raw["median"], 3)
        http["cpu_ratio_to_raw"] = round(http["events_per_cpu_s"] / raw["events_per_cpu_s"], 3)
        results["http"][f"batch_{batch}"] = http
    results["requests_per_worker"] = served.requests_per_worker()
    return results


def run(
    bootstrap: str,
    events: int = EVENTS_PER_RUN,
    batches: tuple[int, ...] = (100, 1000),
    clients: int = 8,
    runs: int = 3,
    workers: tuple[int, ...] = (1, 2),
) -> dict[str, Any]:
    """HTTP (1 and 2 processes) and raw producer events/s and per CPU second; 1000 events validated."""
    topic = f"bench.ingest.{uuid.uuid4().hex[:8]}"
    create_topics(bootstrap, 6, {topic: {"partitions": 6, "configs": {}}})
    results: dict[str, Any] = {"events_per_run": events, "clients": clients, "partitions": 6, "workers": {}}
    raw = _median_of(runs, lambda tag: raw_rate(bootstrap, topic, make_events(events, f"raw-{tag}")))
    results["raw_producer_events_per_s"] = raw
    options = {"events": events, "clients": clients, "runs": runs, "batches": batches}
    for count in workers:
        with (
            tempfile.TemporaryDirectory(prefix="tollgate-bench-") as workdir,
            ingest_process(bootstrap, topic, Path(workdir), count) as served,
        ):
            results["workers"][str(count)] = _served_medians(served, count, raw, options)
    results["http"] = results["workers"].get("1", {}).get("http", {})
    seconds = validation_seconds()
    results["validation_1000_events_ms"] = round(seconds * 1000, 2)
    return results


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", default=os.environ.get("TOLLGATE_KAFKA_BOOTSTRAP", ""))
    parser.add_argument("--events", type=int, default=EVENTS_PER_RUN)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    if not args.bootstrap:
        parser.error("--bootstrap or $TOLLGATE_KAFKA_BOOTSTRAP is required")
    logging.basicConfig(level=logging.WARNING)
    print(json.dumps(run(args.bootstrap, args.events, clients=args.clients, runs=args.runs), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
