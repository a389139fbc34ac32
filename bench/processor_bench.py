"""Processor benchmark: events/s per worker, event-to-alert latency, raw aiokafka drain of the same topic.

Usage: `python -m bench.processor_bench [BOOTSTRAP]` (default $TOLLGATE_KAFKA_BOOTSTRAP); prints JSON.
The latency is measured while a background load of `load_fraction` (default half) of the run's measured
throughput flows through the same worker. `BENCH_PROFILE=DIR` runs each worker under pyinstrument and
writes its profile (text) to DIR.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

from services.core.agreements import load_agreements
from services.core.events import ApiCall, dumps, loads
from services.demo.launcher import free_port
from services.demo.scenario import AGREEMENTS_FILE

log = logging.getLogger("bench.processor")
ROOT = Path(__file__).resolve().parents[1]
PARTITIONS = 6
START = datetime(2026, 10, 1, tzinfo=UTC)


def _topics(bootstrap: str) -> dict[str, str]:
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    names = {k: f"{prefix}.{k}" for k in ("INPUT", "DLQ", "AGREEMENTS", "ALERTS", "BILLABLE")}
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(n, PARTITIONS, 1) for n in names.values()])
    admin.close()
    return names


def _calls(licensees: int, per_licensee: int, tag: str) -> list[ApiCall]:
    # Spread over the month: realistic state sizes (dedupe memory of 7 days, minute buckets).
    step = 31 * 86400 // per_licensee
    return [
        ApiCall(
            f"{tag}-{i}",
            f"bench-{lic}",
            START + timedelta(seconds=i * step),
            f"lic-{lic}",
            "pebble-app",
            "/x",
            "GET",
            200,
            10,
            900,
            "reader",
            "commercial",
        )
        for i in range(per_licensee)
        for lic in range(licensees)
    ]


def _produce(bootstrap: str, topic: str, pairs: list[tuple[bytes, bytes]]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=10, batch_size=256 * 1024)
    for key, value in pairs:
        producer.send(topic, key=key, value=value)
    producer.flush()
    producer.close()


def _agreements(bootstrap: str, topic: str, licensees: int) -> None:
    pebble = next(a for a in load_agreements(AGREEMENTS_FILE) if a.licensee_id == "pebble")
    pairs = []
    for lic in range(licensees):
        agreement = replace(pebble, licensee_id=f"lic-{lic}", raw={**pebble.raw, "licensee_id": f"lic-{lic}"})
        pairs.append((f"lic-{lic}".encode(), dumps(agreement.to_cloudevent())))
    _produce(bootstrap, topic, pairs)


def _worker(bootstrap: str, names: dict[str, str], workdir: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "TOLLGATE_KAFKA_BOOTSTRAP": bootstrap,
        "TOLLGATE_PROCESSOR_APP_ID": f"bench-{uuid.uuid4().hex[:8]}",
        "TOLLGATE_PROCESSOR_METRICS_PORT": str(free_port()),
        "TOLLGATE_PROCESSOR_DATA_DIR": str(workdir),
        "TOLLGATE_LOG_LEVEL": "warning",
        **{f"TOLLGATE_PROCESSOR_TOPIC_{k}": v for k, v in names.items()},
    }
    log_file = (workdir / "worker.log").open("ab")
    command = [sys.executable, "-m", "services.cli", "serve", "processor"]
    profile_dir = os.environ.get("BENCH_PROFILE")
    if profile_dir:
        output = Path(profile_dir) / f"processor-{uuid.uuid4().hex[:6]}.txt"
        command[1:1] = ["-m", "pyinstrument", "-r", "text", "-o", str(output)]
    # Our own module with fixed arguments.
    return subprocess.Popen(  # noqa: S603
        command,
        cwd=ROOT,
        env=env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )


def _timestamps(bootstrap: str, topic: str, expected: int, timeout: float) -> list[float]:
    """Kafka timestamps (s) of the first `expected` records of `topic`, waiting for them to arrive."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    stamps: list[float] = []
    deadline = time.monotonic() + timeout
    while len(stamps) < expected and time.monotonic() < deadline:
        for batch in consumer.poll(timeout_ms=500).values():
            stamps += [m.timestamp / 1000 for m in batch]
    consumer.close()
    return stamps


async def _raw_drain(bootstrap: str, topic: str, expected: int) -> float:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    started, seen = time.perf_counter(), 0
    try:
        while seen < expected:
            for batch in (await consumer.getmany(timeout_ms=500, max_records=5000)).values():
                seen += sum(1 for m in batch if loads(m.value))  # parse, as the processor must
    finally:
        await consumer.stop()
    return expected / (time.perf_counter() - started)


def _background(bootstrap: str, topic: str, licensees: int, rate: float, stop: threading.Event) -> None:
    """Produce calls of the known licensees at `rate` per second until `stop` (the load under test)."""
    if rate <= 0:
        return
    later = START + timedelta(days=32)  # after the throughput phase's calls: never late
    calls = [
        replace(_calls(1, 1, f"bg-{n}")[0], licensee_id=f"lic-{n % licensees}", time=later)
        for n in range(int(rate * 30))  # enough for the latency phase (about 20 s)
    ]
    payloads = [(c.licensee_id.encode(), dumps(c.to_cloudevent())) for c in calls]
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5, batch_size=256 * 1024)
    started, sent = time.monotonic(), 0
    while not stop.is_set() and sent < len(payloads):
        due = min(len(payloads), int((time.monotonic() - started) * rate))
        for key, value in payloads[sent:due]:
            producer.send(topic, key=key, value=value)
        sent = max(sent, due)
        time.sleep(0.005)
    producer.flush()
    producer.close()


def _latency(
    bootstrap: str, names: dict[str, str], rate: float, seconds: float, load: tuple[int, float] = (0, 0.0)
) -> dict[str, float]:
    """Produce paced calls of unknown licensees (each raises agreement.missing); time produce -> alert.

    `load` is (licensees, events/s) of background calls flowing meanwhile.
    """
    arrivals: dict[str, float] = {}
    stop = threading.Event()

    def listen() -> None:
        consumer = KafkaConsumer(
            names["ALERTS"],
            bootstrap_servers=bootstrap,
            auto_offset_reset="latest",
            group_id=f"bench-{uuid.uuid4().hex[:6]}",
        )
        while not stop.is_set():
            for batch in consumer.poll(timeout_ms=200).values():
                for m in batch:
                    arrivals.setdefault(loads(m.value)["data"]["licensee_id"], time.time())
        consumer.close()

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    background = threading.Thread(
        target=_background, args=(bootstrap, names["INPUT"], load[0], load[1], stop), daemon=True
    )
    background.start()
    time.sleep(3)  # let the listener join its group and the background load settle before the first alert
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
    sent: dict[str, float] = {}
    total = int(rate * seconds)
    for i in range(total):
        licensee = f"unknown-{uuid.uuid4().hex[:8]}"
        call = ApiCall(
            f"lat-{i}", "bench-latency", START, licensee, "a", "/x", "GET", 200, 1, 1, "o", "commercial"
        )
        sent[licensee] = time.time()
        producer.send(names["INPUT"], key=licensee.encode(), value=dumps(call.to_cloudevent()))
        producer.flush()
        time.sleep(max(0.0, sent[licensee] + 1 / rate - time.time()))
    producer.close()
    deadline = time.monotonic() + 60
    while len(arrivals) < total and time.monotonic() < deadline:
        time.sleep(0.5)
    stop.set()
    listener.join(5)
    background.join(30)
    delays = sorted(arrivals[k] - sent[k] for k in sent if k in arrivals)
    return {
        "p50_s": round(statistics.median(delays), 3),
        "p99_s": round(delays[max(0, int(len(delays) * 0.99) - 1)], 3),
        "alerts": len(delays),
        "sent": total,
        "background_events_per_s": round(load[1], 1),
    }


def run_once(
    bootstrap: str,
    licensees: int = 20,
    per_licensee: int = 500,
    rate: float = 20.0,
    load_fraction: float = 0.5,
) -> dict[str, Any]:
    """One run: throughput of one worker, latency under `load_fraction` of it, raw consumer drain."""
    names = _topics(bootstrap)
    _agreements(bootstrap, names["AGREEMENTS"], licensees)
    calls = _calls(licensees, per_licensee, uuid.uuid4().hex[:6])
    _produce(bootstrap, names["INPUT"], [(c.licensee_id.encode(), dumps(c.to_cloudevent())) for c in calls])
    raw = asyncio.run(_raw_drain(bootstrap, names["INPUT"], len(calls)))
    with tempfile.TemporaryDirectory() as workdir:
        worker = _worker(bootstrap, names, Path(workdir))
        try:
            stamps = sorted(_timestamps(bootstrap, names["BILLABLE"], len(calls), timeout=900))
            processed = (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 else 0.0
            load = (licensees, processed * load_fraction)
            latency = _latency(bootstrap, names, rate, seconds=15, load=load)
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(60)
    return {
        "events": len(calls),
        "processor_events_per_s": round(processed, 1),
        "raw_consumer_events_per_s": round(raw, 1),
        "ratio": round(processed / raw, 4),
        "latency": latency,
    }


def run(bootstrap: str, runs: int = 3, **kwargs: Any) -> dict[str, Any]:
    """Median of `runs` runs."""
    results = [run_once(bootstrap, **kwargs) for _ in range(runs)]
    return {
        "runs": results,
        "median": {
            "processor_events_per_s": statistics.median(r["processor_events_per_s"] for r in results),
            "raw_consumer_events_per_s": statistics.median(r["raw_consumer_events_per_s"] for r in results),
            "ratio": statistics.median(r["ratio"] for r in results),
            "alert_latency_p50_s": statistics.median(r["latency"]["p50_s"] for r in results),
            "alert_latency_p99_s": statistics.median(r["latency"]["p99_s"] for r in results),
        },
    }


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    address = sys.argv[1] if len(sys.argv) > 1 else os.environ["TOLLGATE_KAFKA_BOOTSTRAP"]
    count = int(os.environ.get("BENCH_RUNS", "3"))
    print(json.dumps(run(address, runs=count), indent=2))  # the benchmark reports on stdout
