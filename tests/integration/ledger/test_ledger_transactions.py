"""The processor writes billable usage in Kafka transactions: the ledger stores only committed records and
its stored offsets reach the end of the topic, markers included."""

from __future__ import annotations

import uuid

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from ledger_support import LedgerDb, settings_for, synthetic_billables

from services.core.events import dumps
from services.ledger.adapters.kafka.consumer import LedgerConsumer

pytestmark = pytest.mark.integration


def _produce_in_transactions(bootstrap: str, topic: str, committed: int, aborted: int) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, transactional_id=f"tx-{uuid.uuid4().hex[:8]}")
    producer.init_transactions()
    usages = synthetic_billables(committed + aborted)
    for start in range(0, committed, 10):
        producer.begin_transaction()
        for usage in usages[start : min(start + 10, committed)]:
            producer.send(topic, key=usage.licensee_id.encode(), value=dumps(usage.to_cloudevent()))
        producer.commit_transaction()
        producer.begin_transaction()
        for usage in usages[committed:]:
            producer.send(topic, key=usage.licensee_id.encode(), value=dumps(usage.to_cloudevent()))
        producer.flush()
        producer.abort_transaction()
    producer.close()


def _end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return {tp.partition: int(end) for tp, end in consumer.end_offsets(parts).items()}
    finally:
        consumer.close()


def test_only_committed_billable_records_are_stored_and_offsets_reach_the_end_past_the_markers(
    ledger_db: LedgerDb, kafka_bootstrap: str, billable_topics: tuple[str, str]
) -> None:
    topic = billable_topics[0]
    _produce_in_transactions(kafka_bootstrap, topic, committed=50, aborted=3)
    consumer = LedgerConsumer(settings_for(kafka_bootstrap, ledger_db, billable_topics))
    consumer.drain(timeout=60)
    consumer.close()
    assert ledger_db.scalar("SELECT count(*) FROM usage_entries") == 50
    stored = dict(ledger_db.rows("SELECT kafka_partition, next_offset FROM consumer_offsets"))
    ends = {p: end for p, end in _end_offsets(kafka_bootstrap, topic).items() if end > 0}
    # 50 records, 5 committed and 5 aborted transactions of markers, 15 aborted records
    assert sum(ends.values()) == 50 + 10 + 15
    assert {p: stored.get(p) for p in ends} == ends
