"""The fast changelog producer (services/processor/changelog_produce.py) on the real broker: the same
records as quix's path, inside the transaction, with quix's offset bookkeeping and its BufferError retry."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import KafkaError, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from processor_support import committed_reader, read_messages
from quixstreams.internal_producer import InternalProducer
from quixstreams.kafka.exceptions import KafkaProducerDeliveryError
from quixstreams.state.recovery import ChangelogProducer

from services.core.security import PLAINTEXT
from services.processor.changelog_produce import install

pytestmark = pytest.mark.integration

HEADERS = {
    "__column_family__": "default",
    "__processed_tp_offsets__": b'{"in": 7}',
    "__ttl_stamped__": b"\x01",
}
# Values like a stamped dedupe entry, and tombstones (None) like the sweep's, interleaved.
RECORDS = [
    (f"lic|d:{n:016x}".encode(), None if n % 3 == 0 else b"\x00" * 8 + str(n).encode()) for n in range(50)
]


@pytest.fixture
def changelogs(broker: str) -> Iterator[tuple[str, str]]:
    """Two fresh 2-partition topics: one written through quix's path, one through the fast one."""
    names = (f"t-changelog-quix-{uuid.uuid4().hex[:8]}", f"t-changelog-fast-{uuid.uuid4().hex[:8]}")
    admin = KafkaAdminClient(bootstrap_servers=broker)
    try:
        admin.create_topics([NewTopic(name, 2, 1) for name in names])
        yield names
        admin.delete_topics(list(names))
    finally:
        admin.close()


def produce_committed(
    broker: str, topic: str, fast: bool, extra: dict[str, Any] | None = None
) -> InternalProducer:
    """Produce RECORDS to partition 1 of `topic` in one committed transaction."""
    producer = InternalProducer(broker, extra_config=extra, transactional=True)
    changelog = ChangelogProducer(topic, 1, producer)
    if fast:
        assert install(changelog)
    producer.begin_transaction()
    for key, value in RECORDS:
        changelog.produce(key=key, value=value, headers=HEADERS)
    producer.flush()
    producer.commit_transaction([], None)  # type: ignore[arg-type]  # no input offsets to send
    return producer


def read_committed(broker: str, topic: str) -> list[tuple[int, bytes, bytes | None, list[Any]]]:
    """Partition, key, value and headers of every committed message, partition by partition."""
    messages = read_messages(broker, topic, timeout=30)
    return sorted(
        ((m.partition(), m.key(), m.value(), m.headers()) for m in messages),
        key=lambda found: found[0],  # a stable sort: each partition's messages keep their order
    )


def test_the_fast_path_commits_the_same_records_as_quix_and_records_their_offset(
    broker: str, changelogs: tuple[str, str]
) -> None:
    quix_topic, fast_topic = changelogs
    produce_committed(broker, quix_topic, fast=False)
    fast = produce_committed(broker, fast_topic, fast=True)

    by_quix, by_fast = read_committed(broker, quix_topic), read_committed(broker, fast_topic)
    assert len(by_fast) == len(RECORDS)
    assert [(p, k, v) for p, k, v, _ in by_fast] == [(1, key, value) for key, value in RECORDS]
    assert by_fast == by_quix  # partition, key, value and headers, in order
    # quix stores this offset with the state it flushes (the changelog offset of the partition).
    assert fast._tp_offsets[(fast_topic, 1)] == len(RECORDS) - 1


def test_a_full_local_queue_falls_back_to_quix_retry_and_loses_nothing(
    broker: str, changelogs: tuple[str, str]
) -> None:
    _, topic = changelogs
    # A queue of 5 records: producing 50 without a poll in between overflows it many times.
    produce_committed(broker, topic, fast=True, extra={"queue.buffering.max.messages": 5})
    assert [(k, v) for _, k, v, _ in read_committed(broker, topic)] == RECORDS


def test_a_record_the_broker_refuses_fails_the_flush_and_nothing_of_its_transaction_commits(
    broker: str,
) -> None:
    topic = f"t-changelog-small-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=broker)
    # The broker refuses records over 1 KiB here; the client's own limit (1 MB) lets them through.
    admin.create_topics([NewTopic(topic, 2, 1, topic_configs={"max.message.bytes": "1024"})])
    try:
        producer = InternalProducer(broker, transactional=True)
        changelog = ChangelogProducer(topic, 1, producer)
        assert install(changelog)
        producer.begin_transaction()
        changelog.produce(key=b"small", value=b"x", headers=HEADERS)
        producer.flush()  # delivered into the open transaction
        # Random bytes: they do not compress under the broker's limit.
        changelog.produce(key=b"large", value=os.urandom(4_000), headers=HEADERS)
        with pytest.raises(KafkaProducerDeliveryError) as refused:
            producer.flush()  # quix's flush raises the error the delivery callback latched
        assert refused.value.error.code() == KafkaError.MSG_SIZE_TOO_LARGE
        producer.abort_transaction(timeout=30)
        reader = committed_reader(broker, PLAINTEXT)
        try:  # the small record is in the log, followed by the abort marker
            assert reader.get_watermark_offsets(TopicPartition(topic, 1), timeout=10)[1] == 2
        finally:
            reader.close()
        assert read_messages(broker, topic, timeout=30) == []  # and no committed reader sees it
    finally:
        admin.delete_topics([topic])
        admin.close()
