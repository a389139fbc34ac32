"""Records the ledger cannot record: to the DLQ topic (with reason and origin headers) and the table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kafka import KafkaProducer

from services.core.security import KafkaSecurity

MAX_PAYLOAD = 65536  # the table keeps a prefix of huge payloads; the DLQ topic keeps them whole
DeadLetter = tuple[Any, str]  # (Kafka record, reason)


def dead_letter_rows(dead: Sequence[DeadLetter]) -> list[tuple[Any, ...]]:
    """Rows for `dead_letters`: topic, partition, offset, reason, payload."""
    return [
        (record.topic, record.partition, record.offset, reason,
         record.value[:MAX_PAYLOAD] if record.value is not None else None)
        for record, reason in dead
    ]  # fmt: skip


class DeadLetterPublisher:
    """Publishes dead letters with acks=all and waits for every acknowledgement."""

    def __init__(self, bootstrap: str, topic: str, *, security: KafkaSecurity) -> None:
        self.topic = topic
        self._producer = KafkaProducer(
            bootstrap_servers=bootstrap, acks="all", retries=5, **security.kafka_python()
        )

    def publish(self, dead: Sequence[DeadLetter]) -> None:
        """Send each record's original key and value; raise KafkaError unless all were acknowledged."""
        futures = []
        for record, reason in dead:
            headers = [
                ("tollgate-reason", reason.encode()),
                ("tollgate-topic", record.topic.encode()),
                ("tollgate-partition", str(record.partition).encode()),
                ("tollgate-offset", str(record.offset).encode()),
            ]
            futures.append(
                self._producer.send(self.topic, key=record.key, value=record.value or b"", headers=headers)
            )
        self._producer.flush(timeout=30)
        for future in futures:
            future.get(timeout=30)

    def close(self) -> None:
        """Flush and close the producer."""
        self._producer.close(timeout=10)
