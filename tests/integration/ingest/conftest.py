"""Ingest integration fixtures: the app on a real port against real Kafka, and a Kafka we may stop."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from kafka import KafkaConsumer, TopicPartition

from services.core.tokens import InMemoryTokenStore
from services.ingest.app import create_app
from services.ingest.kafka_publisher import KafkaPublisher
from services.ingest.main import serve_in_thread
from services.ingest.settings import IngestSettings
from services.stack import StackConfig, StackError
from services.stack import kafka as stack_kafka
from services.stack.ports import free_port, free_ports
from services.stack.process import log_has, spawn, stop_pid, wait_until


def _api_call(n: int, licensee: str = "omnisoft", source: str = "gateway-it") -> dict[str, Any]:
    """A valid api-call event."""
    return {
        "specversion": "1.0",
        "id": f"it-{n:07d}",
        "source": source,
        "type": "io.tollgate.api.call.v1",
        "time": "2026-10-15T10:00:00Z",
        "datacontenttype": "application/json",
        "data": {
            "licensee_id": licensee,
            "app_id": "omni-search",
            "endpoint": "/2/tweets/search/all",
            "method": "GET",
            "status": 200,
            "records": n % 50,
            "bytes": 900,
            "requester": {"org_id": "acme", "org_type": "commercial"},
        },
    }


def _read_topic(bootstrap: str, topic: str, expected: int, timeout: float = 30.0) -> list[Any]:
    """Every record of `topic` from the beginning, waiting until at least `expected` arrived."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        records: list[Any] = []
        deadline = time.monotonic() + timeout
        while len(records) < expected and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
        return records
    finally:
        consumer.close()


@pytest.fixture
def api_call() -> Callable[..., dict[str, Any]]:
    """Factory of valid events: `api_call(n, licensee=..., source=...)`."""
    return _api_call


@pytest.fixture
def read_topic() -> Callable[..., list[Any]]:
    """`read_topic(bootstrap, topic, expected)`: every record from the beginning."""
    return _read_topic


@dataclass
class LiveIngest:
    """An ingest app served over real HTTP, publishing to a real broker."""

    url: str
    token: str
    settings: IngestSettings
    publisher: KafkaPublisher
    client: httpx.Client

    def post(self, events: list[dict[str, Any]]) -> httpx.Response:
        """POST a batch with the ingest token."""
        return self.client.post(
            f"{self.url}/v1/events",
            content=orjson.dumps(events),
            headers={
                "Content-Type": "application/cloudevents-batch+json",
                "Authorization": f"Bearer {self.token}",
            },
        )


@pytest.fixture
def live_ingest(tmp_path: Path) -> Iterator[Callable[..., LiveIngest]]:
    """Factory: `live_ingest(bootstrap, topic, **settings)` serves ingest on a free port for the test."""
    stack: list[Any] = []

    def start(bootstrap: str, topic: str, **overrides: Any) -> LiveIngest:
        settings = IngestSettings(bootstrap, tmp_path / "tokens.json", topic=topic, **overrides)
        tokens = InMemoryTokenStore()
        token = tokens.create("it-gateway", "ingest")
        publisher = KafkaPublisher(settings)
        server = serve_in_thread(create_app(settings, publisher, tokens), free_port())
        url = server.__enter__()
        client = httpx.Client(timeout=30.0)
        stack.append((server, client))
        return LiveIngest(url, token, settings, publisher, client)

    yield start
    for server, client in stack:
        client.close()
        server.__exit__(None, None, None)


class PrivateKafka:
    """A single-node KRaft broker of our own, so a test can stop and restart it without harming others."""

    def __init__(self, root: Path) -> None:
        self.config = StackConfig(stack_dir=root, partitions=3)
        kafka_port, controller_port = free_ports(2)
        self.ports = {"kafka": kafka_port, "kafka_controller": controller_port}
        self.bootstrap = f"127.0.0.1:{kafka_port}"
        self.pid: int | None = None
        self.starts = 0

    def start(self) -> None:
        """First start formats storage and creates the contract's topics; later ones reuse the data."""
        if self.starts == 0:
            info = stack_kafka.start(self.config, self.ports, lambda pid: setattr(self, "pid", pid))
            self.pid = info["pid"]
        else:
            self._restart()
        self.starts += 1

    def _restart(self) -> None:
        work = self.config.part_dir(stack_kafka.PART)
        log_path = work / f"restart-{self.starts}.log"
        argv = [
            self.config.java,
            f"-Xms{self.config.kafka_heap}",
            f"-Xmx{self.config.kafka_heap}",
            "-Djava.awt.headless=true",
            "-cp",
            f"{self.config.libs_dir}/*",
            f"-Dlog4j.configuration=file:{self.config.kafka_log4j}",
            "kafka.Kafka",
            str(work / "server.properties"),
        ]
        self.pid = spawn(stack_kafka.PART, argv, log_path)
        wait_until(
            stack_kafka.PART,
            log_has(log_path, stack_kafka.READY_LINE),
            timeout=90,
            log_path=log_path,
            pid=self.pid,
        )

    def stop(self) -> None:
        """SIGTERM the broker (SIGKILL after a grace period) and wait until it is gone."""
        stop_pid(self.pid, grace=20)
        self.pid = None


@pytest.fixture(scope="module")
def private_kafka() -> Iterator[PrivateKafka]:
    """A broker this module owns (stopped and restarted by its tests), removed at the end."""
    root = Path(tempfile.mkdtemp(prefix="tollgate-ingest-kafka-"))
    broker = PrivateKafka(root)
    try:
        stack_kafka.install_jars(broker.config.libs_dir, broker.config.kafka_pom)
        broker.start()
        yield broker
    except StackError as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"private Kafka did not start: {exc}")
        pytest.skip(f"private Kafka did not start: {exc}")
    finally:
        broker.stop()
        shutil.rmtree(root, ignore_errors=True)
