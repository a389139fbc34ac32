"""The session's stack works: Kafka (groups, transactions, topics), PostgreSQL, Prometheus, Alertmanager."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import psycopg
import pytest
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from services.core import topics
from services.stack import StackInfo
from services.stack.ports import free_port

pytestmark = pytest.mark.integration


def _consume(bootstrap: str, topic: str, want: int, **config: Any) -> list[bytes]:
    """Read until `want` records arrived or 30 s passed."""
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=1000,
        **config,
    )
    values: list[bytes] = []
    deadline = time.monotonic() + 30
    try:
        while len(values) < want and time.monotonic() < deadline:
            values.extend(record.value for record in consumer)
    finally:
        consumer.close()
    return values


def _admin(bootstrap: str) -> KafkaAdminClient:
    return KafkaAdminClient(bootstrap_servers=bootstrap, client_id="tollgate-stack-tests")


def test_records_produced_to_the_broker_reach_a_consumer_group(
    kafka_bootstrap: str, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(partitions=6)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    sent = [f"event-{i}".encode() for i in range(20)]
    for i, value in enumerate(sent):
        producer.send(topic, key=f"licensee-{i % 4}".encode(), value=value)
    producer.flush()
    producer.close()

    group = f"group-{uuid.uuid4().hex[:8]}"
    received = _consume(kafka_bootstrap, topic, len(sent), group_id=group, enable_auto_commit=False)

    assert sorted(received) == sorted(sent)


def test_a_read_committed_consumer_sees_committed_records_and_never_aborted_ones(
    kafka_bootstrap: str, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(partitions=1)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, transactional_id=f"tx-{uuid.uuid4().hex[:8]}")
    producer.init_transactions()
    for values, commit in (([b"a1", b"a2"], True), ([b"b1", b"b2"], False), ([b"c1"], True)):
        producer.begin_transaction()
        for value in values:
            producer.send(topic, value=value)
        producer.flush()
        if commit:
            producer.commit_transaction()
        else:
            producer.abort_transaction()
    producer.close()

    committed = _consume(kafka_bootstrap, topic, 3, isolation_level="read_committed")
    everything = _consume(kafka_bootstrap, topic, 5, isolation_level="read_uncommitted")

    assert committed == [b"a1", b"a2", b"c1"]
    assert everything == [b"a1", b"a2", b"b1", b"b2", b"c1"]


def test_the_contract_topics_have_six_partitions_and_agreements_is_compacted(kafka_bootstrap: str) -> None:
    admin = _admin(kafka_bootstrap)
    try:
        described = {t["name"]: t for t in admin.describe_topics(list(topics.ALL_TOPICS))}
        configs = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name) for name in topics.ALL_TOPICS],
            config_filter="all",
        )
    finally:
        admin.close()

    assert {name: len(described[name]["partitions"]) for name in topics.ALL_TOPICS} == dict.fromkeys(
        topics.ALL_TOPICS, 6
    )
    policies = {name: _config_value(configs, name, "cleanup.policy") for name in topics.ALL_TOPICS}
    assert policies == {
        name: "compact" if name == topics.AGREEMENTS else "delete" for name in topics.ALL_TOPICS
    }


def _config_value(configs: dict[str, Any], topic: str, key: str) -> str:
    entry = configs["topic"][topic][key]
    return str(entry["value"] if isinstance(entry, dict) else entry)


def test_the_owner_role_creates_tables_and_the_app_role_only_gets_what_is_granted(
    database_url: str, app_database_url: str
) -> None:
    table = f"stack_probe_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(database_url, autocommit=True) as owner:
        owner.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, note text NOT NULL)")
        owner.execute(f"GRANT SELECT, INSERT ON {table} TO tollgate_app")
    try:
        with psycopg.connect(app_database_url) as app:
            app.execute(f"INSERT INTO {table} VALUES (1, 'appended')")  # noqa: S608 - test-made name
            app.commit()
            rows = app.execute(f"SELECT id, note FROM {table}").fetchall()  # noqa: S608
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                app.execute(f"DELETE FROM {table}")  # noqa: S608
    finally:
        with psycopg.connect(database_url, autocommit=True) as owner:
            owner.execute(f"DROP TABLE {table}")

    assert rows == [(1, "appended")]


def _query(prometheus_url: str, promql: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{prometheus_url}/api/v1/query", params={"query": promql}, timeout=5)
    answer.raise_for_status()
    return list(answer.json()["data"]["result"])


def _eventually(check: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.5)


def test_prometheus_scrapes_itself(prometheus_url: str) -> None:
    result = _eventually(lambda: _query(prometheus_url, 'up{job="prometheus"} == 1'))

    assert result, "prometheus never reported its own target as up"


@pytest.fixture
def metrics_endpoint() -> Iterator[str]:
    """A prometheus-client HTTP endpoint on a free port exposing `tollgate_stack_probe 42`."""
    registry = CollectorRegistry()
    Gauge("tollgate_stack_probe", "a probe for the stack's tests", registry=registry).set(42)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    yield f"127.0.0.1:{port}"
    server.shutdown()
    thread.join(timeout=5)


def test_a_registered_scrape_target_is_scraped_under_its_job(
    stack_info: StackInfo, metrics_endpoint: str
) -> None:
    if stack_info.stack_dir is None:
        pytest.skip("this stack's Prometheus reads no target files (container stack)")
    job = f"tollgate-probe-{uuid.uuid4().hex[:6]}"
    stack_info.register_scrape_target(job, metrics_endpoint)
    try:
        result = _eventually(
            lambda: _query(stack_info.prometheus_url, f'tollgate_stack_probe{{job="{job}"}} == 42')
        )
    finally:
        stack_info.unregister_scrape_target(job, metrics_endpoint)

    assert result and result[0]["metric"]["instance"] == metrics_endpoint


def test_alertmanager_answers_its_status_api_and_prometheus_knows_it(
    stack_info: StackInfo, alertmanager_url: str
) -> None:
    status = httpx.get(f"{alertmanager_url}/api/v2/status", timeout=5)

    assert status.status_code == 200
    assert "route" in status.json()["config"]["original"]
    if stack_info.stack_dir is not None:
        port = alertmanager_url.rsplit(":", 1)[1]
        active = _eventually(lambda: _active_alertmanagers(stack_info.prometheus_url))
        assert any(f":{port}/" in item["url"] for item in active)


def _active_alertmanagers(prometheus_url: str) -> list[dict[str, str]]:
    answer = httpx.get(f"{prometheus_url}/api/v1/alertmanagers", timeout=5).json()
    return list(answer["data"]["activeAlertmanagers"])
