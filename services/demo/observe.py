"""Read what the system produced: a topic from the beginning, a service's metrics."""

from __future__ import annotations

import time
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from services.core.events import loads
from services.core.security import PLAINTEXT, KafkaSecurity, librdkafka_options


def read_topic(
    bootstrap: str, topic: str, timeout: float = 30.0, security: KafkaSecurity = PLAINTEXT
) -> list[dict[str, Any]]:
    """Every record of `topic` up to its end offsets now, decoded as JSON, in partition order."""
    from kafka import KafkaConsumer, TopicPartition

    # read_committed: the processor's outputs of aborted transactions are not alerts or usage.
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        group_id=None,
        isolation_level="read_committed",
        **security.kafka_python(),
    )
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        end = consumer.end_offsets(partitions)
        records: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while any(consumer.position(tp) < end[tp] for tp in partitions):
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not read {topic} to its end within {timeout:.0f}s")
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(loads(r.value) for r in batch)
        return records
    finally:
        consumer.close()


def unique_alerts(bootstrap: str, topic: str, security: KafkaSecurity = PLAINTEXT) -> list[dict[str, Any]]:
    """The alerts on `topic`, once each by alert_id (sinks dedupe re-emissions)."""
    seen: dict[str, dict[str, Any]] = {}
    for event in read_topic(bootstrap, topic, security=security):
        seen.setdefault(event["data"]["alert_id"], event["data"])
    order = ("licensee_id", "detected_at", "rule", "subject")
    return sorted(seen.values(), key=lambda a: tuple(str(a.get(k, "")) for k in order))


def metric_sum(address: str, name: str, **labels: str) -> float:
    """Sum of the samples of `name` at http://address/metrics whose labels include `labels`."""
    text = httpx.get(f"http://{address}/metrics", timeout=5.0).text
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def members_sharing(bootstrap: str, group: str, topic: str, security: KafkaSecurity = PLAINTEXT) -> int:
    """How many members of consumer group `group` hold partitions of `topic`: 0 unless the group is stable
    and every member holds some (a group still forming, or one with an idle member, is not sharing yet)."""
    from confluent_kafka import ConsumerGroupState  # type: ignore[import-untyped]
    from confluent_kafka.admin import AdminClient  # type: ignore[import-untyped]

    admin = AdminClient({"bootstrap.servers": bootstrap, **librdkafka_options(security)})
    try:
        described = admin.describe_consumer_groups([group], request_timeout=10)[group].result()
    except Exception:  # a group not formed yet, or the broker busy: not sharing, ask again
        return 0
    held = [[tp for tp in m.assignment.topic_partitions if tp.topic == topic] for m in described.members]
    return len(held) if described.state == ConsumerGroupState.STABLE and all(held) else 0


def wait_members_sharing(
    bootstrap: str,
    group: str,
    topic: str,
    members: int,
    timeout: float,
    security: KafkaSecurity = PLAINTEXT,
) -> float:
    """Wait until `group` is stable with `members` members, each holding partitions of `topic`; the
    seconds it took. TimeoutError names the group and topic."""
    started = time.monotonic()
    while members_sharing(bootstrap, group, topic, security) != members:
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"{members} members of {group} did not share {topic} within {timeout:.0f}s")
        time.sleep(0.5)
    return time.monotonic() - started
