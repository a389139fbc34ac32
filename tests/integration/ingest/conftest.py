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
from ingest_support import INGEST_NOW, api_call_event
from kafka import KafkaConsumer, TopicPartition

from services.core.tokens import InMemoryTokenStore
from services.ingest.app import create_app
from services.ingest.kafka_publisher import KafkaPublisher
from services.ingest.main import serve_in_thread
from services.ingest.settings import IngestSettings
from services.stack import StackConfig, StackError
from services.stack import kafka as stack_kafka
from services.stack.ports import free_port, free_ports
from services.stack.process import stop_pid


def _api_call(n: int, licensee: str = "omnisoft", source: str = "gateway-it") -> dict[str, Any]:
    """A valid api-call event."""
    return api_call_event(f"it-{n:07d}", source=source, licensee=licensee, records=n % 50, size=900)


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

    def published(self, expected: int) -> list[Any]:
        """Every record of the ingest's topic, waiting until at least `expected` arrived."""
        return _read_topic(self.settings.kafka_bootstrap, self.settings.topic, expected)


@pytest.fixture
def live_ingest(tmp_path: Path) -> Iterator[Callable[..., LiveIngest]]:
    """Factory: `live_ingest(bootstrap, topic, **settings)` serves ingest on a free port for the test."""
    stack: list[Any] = []

    def start(bootstrap: str, topic: str, **overrides: Any) -> LiveIngest:
        settings = IngestSettings(bootstrap, tmp_path / "tokens.json", topic=topic, **overrides)
        tokens = InMemoryTokenStore()
        token = tokens.create("it-gateway", "ingest")
        publisher = KafkaPublisher(settings)
        server = serve_in_thread(create_app(settings, publisher, tokens, INGEST_NOW), free_port())
        url = server.__enter__()
        client = httpx.Client(timeout=30.0)
        stack.append((server, client))
        return LiveIngest(url, token, settings, publisher, client)

    yield start
    for server, client in stack:
        client.close()
        server.__exit__(None, None, None)


@pytest.fixture
def ingest_on_new_topic(
    kafka_bootstrap: str, new_topic: Callable[..., str], live_ingest: Callable[..., LiveIngest]
) -> Callable[[int], LiveIngest]:
    """Factory: `ingest_on_new_topic(partitions)` serves ingest publishing to a fresh topic of the stack."""
    return lambda partitions: live_ingest(kafka_bootstrap, new_topic(partitions=partitions))


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
        starter = stack_kafka.start if self.starts == 0 else stack_kafka.restart
        self.pid = starter(self.config, self.ports, self._spawned)["pid"]
        self.starts += 1

    def _spawned(self, pid: int) -> None:
        # Known before the broker is ready, so a start that times out still stops it.
        self.pid = pid

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
