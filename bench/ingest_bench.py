"""Ingest throughput: events/s over HTTP into Kafka (acks=all) against a raw kafka-python producer.

`python -m bench.ingest_bench --bootstrap HOST:PORT` prints JSON. Each figure is the median of three runs.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
from kafka import KafkaProducer

from services.core.tokens import FileTokenStore, Principal
from services.demo.launcher import wait_http_ok
from services.demo.scenario import MONTH_START, demo_calls
from services.ingest.errors import IngestError
from services.ingest.validation import accept
from services.stack.kafka import create_topics
from services.stack.ports import free_port

log = logging.getLogger("bench.ingest")
BATCH_TYPE = "application/cloudevents-batch+json"


def make_events(count: int, run: str) -> list[dict[str, Any]]:
    """`count` demo api-call envelopes with ids unique to `run`, so nothing is a duplicate."""
    calls = demo_calls()
    events = []
    for n in range(count):
        event = calls[n % len(calls)].to_cloudevent()
        event["id"] = f"{run}-{n}"
        events.append(event)
    return events


@contextmanager
def ingest_process(bootstrap: str, topic: str, workdir: Path) -> Iterator[tuple[str, str]]:
    """`tollgate serve ingest` as a subprocess on free ports; yields (base URL, token)."""
    tokens = workdir / "tokens.json"
    token = FileTokenStore(tokens).create("bench", "ingest")
    port = free_port()
    env = {
        **os.environ,
        "TOLLGATE_KAFKA_BOOTSTRAP": bootstrap,
        "TOLLGATE_TOKENS_FILE": str(tokens),
        "TOLLGATE_INGEST_PORT": str(port),
        "TOLLGATE_INGEST_METRICS_PORT": str(free_port()),
        "TOLLGATE_INGEST_TOPIC": topic,
        # The demo calls lie in a fixed month (October 2026), which falls out of ingest's 35-day age bound
        # as time goes by: reach back a year before it, as the demo launcher does.
        "TOLLGATE_INGEST_MAX_EVENT_AGE_SECONDS": str(
            int((datetime.now(UTC) - (MONTH_START - timedelta(days=366))).total_seconds())
        ),
    }
    log_path = workdir / "ingest.log"
    with log_path.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "serve", "ingest"], env=env, stdout=out, stderr=out
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http_ok(process, f"{url}/readyz", 60.0, "ingest", log_path)
        yield url, token
    finally:
        process.terminate()
        process.wait(timeout=30)


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


def raw_rate(bootstrap: str, topic: str, events: list[dict[str, Any]]) -> float:
    """Events/s of one kafka-python producer with ingest's settings, serializing, awaiting every ack."""
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
        started = time.perf_counter()
        futures = [
            producer.send(topic, key=e["data"]["licensee_id"].encode(), value=orjson.dumps(e)) for e in events
        ]
        producer.flush()
        for future in futures:
            future.get(timeout=60)
        return len(events) / (time.perf_counter() - started)
    finally:
        producer.close()


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


def _median_of(runs: int, measure: Callable[[str], float]) -> dict[str, Any]:
    samples = [measure(uuid.uuid4().hex[:8]) for _ in range(runs)]
    return {"median": round(statistics.median(samples)), "runs": [round(s) for s in samples]}


def run(
    bootstrap: str,
    events: int = 20_000,
    batches: tuple[int, ...] = (100, 1000),
    clients: int = 4,
    runs: int = 3,
) -> dict[str, Any]:
    """Measure and return HTTP and raw producer events/s, their ratio, and validation time of 1000 events."""
    topic = f"bench.ingest.{uuid.uuid4().hex[:8]}"
    create_topics(bootstrap, 6, {topic: {"partitions": 6, "configs": {}}})
    results: dict[str, Any] = {"events_per_run": events, "clients": clients, "partitions": 6, "http": {}}
    raw = _median_of(runs, lambda tag: raw_rate(bootstrap, topic, make_events(events, f"raw-{tag}")))
    results["raw_producer_events_per_s"] = raw
    with (
        tempfile.TemporaryDirectory(prefix="tollgate-bench-") as workdir,
        ingest_process(bootstrap, topic, Path(workdir)) as (url, token),
    ):
        for batch in batches:

            def measure(tag: str, size: int = batch) -> float:
                return http_rate(url, token, make_events(events, f"http{size}-{tag}"), size, clients)

            http = _median_of(runs, measure)
            http["ratio_to_raw"] = round(http["median"] / raw["median"], 3)
            results["http"][f"batch_{batch}"] = http
    seconds = validation_seconds()
    results["validation_1000_events_ms"] = round(seconds * 1000, 2)
    return results


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", default=os.environ.get("TOLLGATE_KAFKA_BOOTSTRAP", ""))
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    if not args.bootstrap:
        parser.error("--bootstrap or $TOLLGATE_KAFKA_BOOTSTRAP is required")
    logging.basicConfig(level=logging.WARNING)
    print(json.dumps(run(args.bootstrap, args.events, clients=args.clients, runs=args.runs), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
