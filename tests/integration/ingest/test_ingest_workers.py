"""`TOLLGATE_INGEST_WORKERS=2` as a real process on the real broker: two processes share the port, each
serves requests, and every accepted event is in Kafka exactly once."""

from __future__ import annotations

import collections
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from kafka import KafkaConsumer, TopicPartition

from services.core.tokens import FileTokenStore
from services.demo.launcher import wait_http_ok
from services.stack.ports import free_port

pytestmark = pytest.mark.integration

WORKER_SAMPLE = re.compile(r'^tollgate_ingest_worker_requests_total\{worker="(\d+)"\} (\S+)$', re.MULTILINE)


def children(pid: int) -> set[int]:
    """The pids whose parent is `pid` (Linux /proc)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if parent == pid:
            found.add(int(stat.parent.name))
    return found


def wait_for(condition: Callable[[], bool], what: str, seconds: float = 60.0) -> None:
    """Poll until `condition` holds; fail naming `what` after `seconds` (a readiness wait, not a measure)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {seconds:.0f}s")
        time.sleep(0.2)


@dataclass
class Workers:
    """A `tollgate serve ingest` with two workers, publishing to a topic of its own."""

    process: subprocess.Popen[bytes]
    env: dict[str, str]
    token: str
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.env['TOLLGATE_INGEST_PORT']}"

    def post(self, events: list[dict[str, Any]]) -> httpx.Response:
        """One batch on a connection of its own, so the kernel picks a process for each request."""
        kind = "application/cloudevents-batch+json"
        headers = {"Content-Type": kind, "Authorization": f"Bearer {self.token}"}
        return httpx.post(f"{self.url}/v1/events", content=orjson.dumps(events), headers=headers, timeout=30)

    def metrics(self) -> str:
        return httpx.get(f"http://127.0.0.1:{self.env['TOLLGATE_INGEST_METRICS_PORT']}/metrics").text

    def requests_per_worker(self) -> dict[str, float]:
        return {worker: float(value) for worker, value in WORKER_SAMPLE.findall(self.metrics())}

    def started_workers(self) -> int:
        return self.log.read_text(errors="replace").count("Application startup complete")


def start_ingest(tmp_path: Path, **env: str) -> tuple[subprocess.Popen[bytes], dict[str, str], Path]:
    """`tollgate serve ingest` with `env` on free ports; its output goes to a log file."""
    full = {
        **os.environ,
        "TOLLGATE_INGEST_PORT": str(free_port()),
        "TOLLGATE_INGEST_METRICS_PORT": str(free_port()),
        "TOLLGATE_INGEST_MAX_EVENT_AGE_SECONDS": str(100 * 365 * 86400),  # the events are of October 2026
        **env,
    }
    log = tmp_path / "ingest.log"
    with log.open("wb") as out:
        command = [sys.executable, "-m", "services.cli", "serve", "ingest"]
        process = subprocess.Popen(command, env=full, stdout=out, stderr=subprocess.STDOUT)  # noqa: S603
    return process, full, log


@pytest.fixture
def workers(kafka_bootstrap: str, new_topic: Callable[..., str], tmp_path: Path) -> Iterator[Workers]:
    """Ingest with TOLLGATE_INGEST_WORKERS=2 on a fresh 3-partition topic, once both workers have started."""
    tokens = tmp_path / "tokens.json"
    token = FileTokenStore(tokens).create("gateway", "ingest")
    process, env, log = start_ingest(
        tmp_path,
        TOLLGATE_KAFKA_BOOTSTRAP=kafka_bootstrap,
        TOLLGATE_TOKENS_FILE=str(tokens),
        TOLLGATE_INGEST_TOPIC=new_topic(partitions=3),
        TOLLGATE_INGEST_WORKERS="2",
    )
    served = Workers(process, env, token, log)
    try:
        wait_http_ok(process, f"{served.url}/readyz", 60, "ingest")
        wait_for(lambda: served.started_workers() >= 2, "both workers starting")
        yield served
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
        for pid in children(process.pid):
            os.kill(pid, signal.SIGKILL)


def records_in(bootstrap: str, topic: str) -> list[Any]:
    """Every record of `topic`: all of its partitions read up to their end offsets."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        records: list[Any] = []
        deadline = time.monotonic() + 60
        while any(consumer.position(tp) < ends[tp] for tp in partitions) and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
        return records
    finally:
        consumer.close()


def test_two_processes_share_the_port_and_every_accepted_event_reaches_kafka_exactly_once(
    workers: Workers, api_call: Callable[..., dict[str, Any]]
) -> None:
    assert len(children(workers.process.pid)) == 2
    batches = [[api_call(b * 25 + n, source="workers-it") for n in range(25)] for b in range(40)]
    answers = [workers.post(batch) for batch in batches]
    assert [a.status_code for a in answers] == [202] * 40
    assert all(a.json() == {"accepted": 25, "duplicates": 0} for a in answers)

    per_worker = workers.requests_per_worker()
    assert set(per_worker) == {"0", "1"}
    assert all(count > 0 for count in per_worker.values())
    assert sum(per_worker.values()) == 40
    assert 'tollgate_ingest_events_total{outcome="accepted"} 1000.0' in workers.metrics()

    stored = records_in(workers.env["TOLLGATE_KAFKA_BOOTSTRAP"], workers.env["TOLLGATE_INGEST_TOPIC"])
    ids = collections.Counter(orjson.loads(record.value)["id"] for record in stored)
    assert ids == collections.Counter(event["id"] for batch in batches for event in batch)
    assert set(ids.values()) == {1}

    workers.process.send_signal(signal.SIGTERM)
    assert workers.process.wait(timeout=60) == 0


def test_a_killed_worker_is_replaced_and_the_service_keeps_answering(
    workers: Workers, api_call: Callable[..., dict[str, Any]]
) -> None:
    first = children(workers.process.pid)
    victim = min(first)
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: len(children(workers.process.pid) - {victim}) == 2, "a replacement worker")
    wait_for(lambda: workers.started_workers() >= 3, "the replacement starting its app")
    answers = [workers.post([api_call(n, source="after-kill")]) for n in range(20)]
    assert [a.status_code for a in answers] == [202] * 20

    workers.process.send_signal(signal.SIGTERM)
    assert workers.process.wait(timeout=60) == 0


def test_a_bad_number_of_workers_stops_the_service_at_start_naming_the_variable(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    tokens = tmp_path / "tokens.json"
    FileTokenStore(tokens).create("gateway", "ingest")
    process, _, log = start_ingest(
        tmp_path,
        TOLLGATE_KAFKA_BOOTSTRAP=kafka_bootstrap,
        TOLLGATE_TOKENS_FILE=str(tokens),
        TOLLGATE_INGEST_WORKERS="0",
    )
    assert process.wait(timeout=60) != 0
    assert "TOLLGATE_INGEST_WORKERS must be between 1 and 64, got 0" in log.read_text()
