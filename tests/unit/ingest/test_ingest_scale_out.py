"""TOLLGATE_INGEST_WORKERS: validated at start-up; each process counts its answers; the port is shared."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import pytest
from kafka.partitioner.default import DefaultPartitioner
from prometheus_client import generate_latest

from services.core.errors import SettingsError
from services.ingest.metrics import IngestMetrics
from services.ingest.partitioner import RememberingPartitioner
from services.ingest.settings import MAX_WORKERS, IngestSettings
from services.ingest.workers import reuseport_socket


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    tokens = tmp_path / "tokens.json"
    tokens.write_text('{"tokens": []}')
    return {"TOLLGATE_KAFKA_BOOTSTRAP": "127.0.0.1:9092", "TOLLGATE_TOKENS_FILE": str(tokens)}


def test_one_process_serves_unless_told_otherwise(env: dict[str, str]) -> None:
    assert IngestSettings.from_env(env).workers == 1


def test_the_number_of_processes_is_read_from_the_environment(env: dict[str, str]) -> None:
    assert IngestSettings.from_env({**env, "TOLLGATE_INGEST_WORKERS": "4"}).workers == 4


@pytest.mark.parametrize("value", ["0", "-1", str(MAX_WORKERS + 1), "two", "1.5", "\uff12"])
def test_a_bad_number_of_processes_is_refused_naming_the_variable(env: dict[str, str], value: str) -> None:
    with pytest.raises(SettingsError, match="TOLLGATE_INGEST_WORKERS"):
        IngestSettings.from_env({**env, "TOLLGATE_INGEST_WORKERS": value})


def test_each_process_counts_its_own_answers_under_its_worker_label() -> None:
    metrics = IngestMetrics(worker=3)
    metrics.answered(202, 0.01)
    metrics.answered(400, 0.01)
    text = generate_latest(metrics.registry).decode()
    assert 'tollgate_ingest_worker_requests_total{worker="3"} 2.0' in text


class Cluster:
    """The two metadata calls a partitioner makes, for a topic of `count` partitions."""

    def __init__(self, count: int) -> None:
        self.count = count

    def topics(self) -> set[str]:
        return {"calls"}

    def partitions_for_topic(self, topic: str) -> set[int]:
        return set(range(self.count))

    def available_partitions_for_topic(self, topic: str) -> set[int]:
        return set(range(self.count))


@pytest.mark.parametrize("count", [1, 3, 6, 12])
def test_a_remembered_partition_is_the_default_partitioners_choice(count: int) -> None:
    remembering, default, cluster = RememberingPartitioner(), DefaultPartitioner(), Cluster(count)
    keys = [f"licensee-{n}".encode() for n in range(200)] * 2
    chosen: list[Any] = [remembering.partition("calls", k, k, None, b"v", cluster) for k in keys]
    assert chosen == [default.partition("calls", k, k, None, b"v", cluster) for k in keys]


def test_a_topic_that_grows_gets_partitions_chosen_over_its_new_count() -> None:
    remembering, key = RememberingPartitioner(), b"omnisoft"
    before = remembering.partition("calls", key, key, None, b"v", Cluster(3))
    after = remembering.partition("calls", key, key, None, b"v", Cluster(7))
    assert before == DefaultPartitioner().partition("calls", key, key, None, b"v", Cluster(3))
    assert after == DefaultPartitioner().partition("calls", key, key, None, b"v", Cluster(7))


def test_two_processes_may_listen_on_one_port() -> None:
    first = reuseport_socket("127.0.0.1", 0)
    port = first.getsockname()[1]
    second = reuseport_socket("127.0.0.1", port)
    try:
        first.listen()
        second.listen()
        assert second.getsockname()[1] == port
    finally:
        first.close()
        second.close()


def test_connections_accepted_on_the_shared_port_send_without_nagle_delay() -> None:
    sock = reuseport_socket("127.0.0.1", 0)
    sock.listen()
    nodelay: list[int] = []

    class Probe(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            accepted = transport.get_extra_info("socket")
            nodelay.append(accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            transport.close()

    async def accept_one() -> None:
        server = await asyncio.get_running_loop().create_server(Probe, sock=sock)
        async with server:
            _, writer = await asyncio.open_connection(*sock.getsockname())
            while not nodelay:
                await asyncio.sleep(0.01)
            writer.close()

    asyncio.run(asyncio.wait_for(accept_one(), timeout=10))
    assert nodelay == [1]


def test_a_port_held_without_sharing_is_refused() -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    try:
        with pytest.raises(OSError):
            reuseport_socket("127.0.0.1", holder.getsockname()[1])
    finally:
        holder.close()
