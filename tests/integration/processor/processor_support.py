"""Helpers for driving real processor workers against a real broker."""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from prometheus_client.parser import text_string_to_metric_families

from services.core.events import ApiCall, dumps, loads
from services.demo.launcher import free_port
from services.demo.scenario import AGREEMENTS_FILE

logging.getLogger("kafka").setLevel(logging.WARNING)
ROOT = Path(__file__).resolve().parents[3]
PARTITIONS = 6


@dataclass(frozen=True)
class Topics:
    """One test's private topic names."""

    prefix: str
    input: str
    dlq: str
    agreements: str
    alerts: str
    billable: str

    def env(self) -> dict[str, str]:
        """Overrides that point a worker at these topics."""
        return {
            "TOLLGATE_PROCESSOR_TOPIC_INPUT": self.input,
            "TOLLGATE_PROCESSOR_TOPIC_DLQ": self.dlq,
            "TOLLGATE_PROCESSOR_TOPIC_AGREEMENTS": self.agreements,
            "TOLLGATE_PROCESSOR_TOPIC_ALERTS": self.alerts,
            "TOLLGATE_PROCESSOR_TOPIC_BILLABLE": self.billable,
        }

    def all(self) -> list[str]:
        """Every topic name."""
        return [self.input, self.dlq, self.agreements, self.alerts, self.billable]


def create_topics(broker: str, label: str) -> Topics:
    """Create a fresh, uniquely named set of topics."""
    prefix = f"t-{re.sub(r'[^a-z0-9]+', '-', label.lower())[:40]}-{uuid.uuid4().hex[:8]}"
    names = Topics(
        prefix,
        f"{prefix}.api-calls",
        f"{prefix}.api-calls.dlq",
        f"{prefix}.agreements",
        f"{prefix}.alerts",
        f"{prefix}.billable",
    )
    admin = KafkaAdminClient(bootstrap_servers=broker)
    try:
        admin.create_topics(
            [
                NewTopic(
                    n,
                    PARTITIONS,
                    1,
                    topic_configs={"cleanup.policy": "compact"} if n == names.agreements else {},
                )
                for n in names.all()
            ]
        )
    finally:
        admin.close()
    return names


def delete_topics(broker: str, names: Topics) -> None:
    """Remove a test's topics (the worker's internal topics, named after its app id, stay: they are small)."""
    admin = KafkaAdminClient(bootstrap_servers=broker)
    try:
        admin.delete_topics(names.all())
    except Exception as exc:  # cleanup must not hide the test's own failure
        logging.getLogger(__name__).warning("could not delete topics: %s", exc)
    finally:
        admin.close()


def publish_demo_agreements(broker: str, topics: Topics) -> None:
    """Load demo/agreements.yaml onto the agreements topic through the CLI."""
    command = [
        sys.executable,
        "-m",
        "services.cli",
        "agreements",
        "load",
        str(AGREEMENTS_FILE),
        "--bootstrap",
        broker,
        "--topic",
        topics.agreements,
    ]
    # Our own CLI with fixed arguments.
    subprocess.run(  # noqa: S603
        command,
        check=True,
        cwd=ROOT,
        env={**os.environ, "TOLLGATE_DATABASE_URL": ""},
        capture_output=True,
        timeout=60,
    )


def produce(
    broker: str, topic: str, calls: Iterable[ApiCall], raw: Iterable[tuple[bytes, bytes]] = ()
) -> int:
    """Produce calls keyed by licensee_id (and raw key/value pairs); return how many."""
    producer = KafkaProducer(bootstrap_servers=broker, acks="all", linger_ms=5)
    count = 0
    for call in calls:
        producer.send(topic, key=call.licensee_id.encode(), value=dumps(call.to_cloudevent()))
        count += 1
    for key, value in raw:
        producer.send(topic, key=key, value=value)
        count += 1
    producer.flush()
    producer.close()
    return count


def produce_in_transactions(
    broker: str, topic: str, calls: list[ApiCall], per_transaction: int, aborted: Sequence[ApiCall] = ()
) -> None:
    """Produce calls in committed transactions, each followed by `aborted` in an aborted one.

    Every commit or abort marker takes an offset, so the input has holes a reader must step over.
    """
    producer = KafkaProducer(bootstrap_servers=broker, transactional_id=f"tx-{uuid.uuid4().hex[:8]}")
    producer.init_transactions()
    for start in range(0, len(calls), per_transaction):
        for batch, commit in ((calls[start : start + per_transaction], True), (aborted, False)):
            if not batch:
                continue
            producer.begin_transaction()
            for call in batch:
                producer.send(topic, key=call.licensee_id.encode(), value=dumps(call.to_cloudevent()))
            if commit:
                producer.commit_transaction()
            else:
                producer.flush()
                producer.abort_transaction()
    producer.close()


def read_all(broker: str, topic: str, idle_seconds: float = 2.0) -> list[dict[str, Any]]:
    """Every record of `topic` from the beginning, as JSON."""
    consumer = KafkaConsumer(
        bootstrap_servers=broker,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        consumer_timeout_ms=int(idle_seconds * 1000),
    )
    partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    ends = consumer.end_offsets(partitions)
    records = []
    while any(consumer.position(tp) < end for tp, end in ends.items()):
        for batch in consumer.poll(timeout_ms=1000).values():
            records += [loads(m.value) for m in batch]
    consumer.close()
    return records


def committed_everything(broker: str, group: str, topic: str) -> bool:
    """Whether the group's committed offsets reached the end of every partition of `topic`."""
    consumer = KafkaConsumer(bootstrap_servers=broker, group_id=group, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        ends = consumer.end_offsets(partitions)
        return all((consumer.committed(tp) or 0) >= end for tp, end in ends.items())
    finally:
        consumer.close()


def wait_until(predicate: Any, timeout: float, what: str, interval: float = 1.0) -> None:
    """Poll `predicate` until true; fail naming `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


@dataclass
class Worker:
    """One `tollgate serve processor` subprocess."""

    process: subprocess.Popen[bytes]
    log_path: Path
    metrics_port: int

    def metric(self, name: str, **labels: str) -> float:
        """One sample from the worker's /metrics (0 when absent)."""
        try:
            text = httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).text
        except httpx.TransportError:
            return 0.0  # not listening yet
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                    return float(sample.value)
        return 0.0

    def wait_ready(self, timeout: float = 90.0) -> None:
        """Wait until the worker caught up with the agreements and started its agent."""
        wait_until(
            lambda: "processor ready" in self.log() or self.process.poll() is not None,
            timeout,
            "the worker to start",
        )
        assert self.process.poll() is None, self.log()[-3000:]

    def kill(self) -> None:
        """kill -9: no shutdown hook runs."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        """SIGTERM and wait for the graceful shutdown."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        """The worker's log so far."""
        return self.log_path.read_text(errors="replace")


@dataclass
class Workers:
    """Starts workers for one test and stops every one of them by pid."""

    broker: str
    topics: Topics
    workdir: Path
    app_id: str = field(default_factory=lambda: f"tollgate-processor-{uuid.uuid4().hex[:10]}")
    started: list[Worker] = field(default_factory=list)

    def start(self, name: str, extra: dict[str, str] | None = None) -> Worker:
        """Start a worker subprocess in the test's consumer group."""
        port = free_port()
        env = {
            **os.environ,
            **self.topics.env(),
            "TOLLGATE_KAFKA_BOOTSTRAP": self.broker,
            "TOLLGATE_PROCESSOR_APP_ID": self.app_id,
            "TOLLGATE_PROCESSOR_METRICS_PORT": str(port),
            "TOLLGATE_PROCESSOR_DATA_DIR": str(self.workdir / name),
            **(extra or {}),
        }
        log_path = self.workdir / f"{name}.log"
        with log_path.open("ab") as log_file:
            process = subprocess.Popen(
                [sys.executable, "-m", "services.cli", "serve", "processor"],
                cwd=ROOT,
                env=env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        worker = Worker(process, log_path, port)
        self.started.append(worker)
        return worker

    def wait_drained(self, timeout: float = 180.0) -> None:
        """Wait until the group committed every input offset (outputs and state are acked by then)."""
        wait_until(
            lambda: committed_everything(self.broker, self.app_id, self.topics.input),
            timeout,
            "the input topic to be fully committed",
        )

    def run_solo(self) -> Worker:
        """Start one worker, wait until it committed the whole input topic, and stop it."""
        worker = self.start("solo")
        try:
            self.wait_drained()
        finally:
            self.stop_all()
        return worker

    def stop_all(self) -> None:
        """Stop every worker still running."""
        for worker in self.started:
            worker.stop()


def summary(alerts: list[dict[str, Any]], billable: list[dict[str, Any]]) -> dict[str, Any]:
    """What two runs must agree on: distinct alert ids, distinct usage ids, records per licensee."""
    usage: dict[str, dict[str, Any]] = {}
    for event in billable:
        usage.setdefault(event["data"]["usage_id"], event["data"])
    records: Counter[str] = Counter()
    for data in usage.values():
        records[data["licensee_id"]] += data["records"]
    return {
        "alert_ids": {a["data"]["alert_id"] for a in alerts},
        "usage_ids": set(usage),
        "records": dict(records),
    }


def expected_demo_alert_ids() -> set[str]:
    """The alert ids of an undisturbed run: the pure domain over the demo calls (ids are deterministic)."""
    from datetime import UTC, datetime

    from services.core.agreements import load_agreements
    from services.demo.scenario import demo_calls
    from services.processor.domain.state import LicenseeState
    from services.processor.domain.step import Policy, Position, apply

    known = {a.licensee_id: a for a in load_agreements(AGREEMENTS_FILE)}
    states: dict[str, LicenseeState] = {}
    found = set()
    for offset, call in enumerate(demo_calls()):
        state = states.setdefault(call.licensee_id, LicenseeState(call.licensee_id))
        outcome = apply(
            state, call, Position(0, offset), known.get(call.licensee_id), datetime.now(UTC), Policy()
        )
        found |= {a["data"]["alert_id"] for a in outcome.alerts}
    return found
