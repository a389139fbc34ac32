"""Publishing agreements to the compacted agreements topic: the one way agreements enter Tollgate.

The processor and the ledger both read the topic (the ledger stores each version in PostgreSQL itself), so
the topic is the one source of truth; `tollgate agreements load` and the demo publish through here.
"""

from __future__ import annotations

from collections.abc import Sequence

from services.core import topics
from services.core.agreements import Agreement
from services.core.errors import TollgateError
from services.core.events import dumps
from services.core.security import PLAINTEXT, KafkaSecurity


class AgreementsPublishError(TollgateError):
    """Kafka did not acknowledge the agreements."""


def publish_agreements(
    bootstrap: str,
    agreements: Sequence[Agreement],
    topic: str = topics.AGREEMENTS,
    security: KafkaSecurity = PLAINTEXT,
) -> dict[int, int]:
    """Publish each agreement keyed by licensee_id with acks=all, wait until all are acknowledged, and
    return the next offset after them per partition (what a reader must reach to have them all)."""
    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    try:
        producer = KafkaProducer(
            bootstrap_servers=bootstrap, acks="all", retries=5, max_block_ms=15_000, **security.kafka_python()
        )
    except KafkaError as exc:
        # A refused TLS handshake or SASL login ends here: the constructor bootstraps.
        raise AgreementsPublishError(f"cannot connect to Kafka at {bootstrap}: {exc!r}") from exc
    try:
        futures = [
            producer.send(topic, key=a.licensee_id.encode(), value=dumps(a.to_cloudevent()))
            for a in agreements
        ]
        producer.flush()
        ends: dict[int, int] = {}
        for future in futures:
            meta = future.get(timeout=30)
            ends[meta.partition] = max(ends.get(meta.partition, 0), meta.offset + 1)
    except KafkaError as exc:
        raise AgreementsPublishError(f"publishing agreements to {topic} failed: {exc}") from exc
    finally:
        producer.close()
    return ends
