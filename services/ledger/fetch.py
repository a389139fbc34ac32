"""The ledger's Kafka reads: static assignment, positions from PostgreSQL, no group, nothing committed.

aiokafka parses record batches in C (about 3x kafka-python's pure-Python unpacking on this workload), so
the fetch path uses it, driven synchronously from the consumer's own thread on a private event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Mapping, Sequence
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError as AioKafkaError
from aiokafka.structs import TopicPartition

from services.core.security import KafkaSecurity
from services.ledger.errors import LedgerError

T = TypeVar("T")
FETCH_MAX_BYTES = 64 * 1024 * 1024  # one fetch may bring a whole batch across all partitions
PARTITION_FETCH_BYTES = 8 * 1024 * 1024
KafkaFailure = AioKafkaError


class Fetcher:
    """One topic's assigned partitions, read from explicit positions; sync facade over aiokafka."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        partitions: Sequence[int] | None,
        batch_max: int,
        *,
        security: KafkaSecurity,
    ) -> None:
        self.topic = topic
        self._security = security
        self.partitions: list[int] = []
        self._bootstrap = bootstrap
        self._wanted = partitions
        self._batch_max = batch_max
        self._loop = asyncio.new_event_loop()
        self._consumer: AIOKafkaConsumer | None = None

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self._loop.run_until_complete(coroutine)

    def open(self) -> None:
        """Connect and assign the wanted partitions (default: all of the topic's); LedgerError if missing."""
        self._run(self._open())

    async def _open(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            # The processor writes in Kafka transactions: only committed billable records are usage.
            isolation_level="read_committed",
            max_poll_records=self._batch_max,
            fetch_max_bytes=FETCH_MAX_BYTES,
            max_partition_fetch_bytes=PARTITION_FETCH_BYTES,
            client_id="tollgate-ledger",
            **self._security.aiokafka(),
        )
        try:
            # Inside the try: a refused TLS handshake or SASL login fails start(), and stop() still frees it.
            await consumer.start()
            # aiokafka has no public "fetch this topic's metadata"; this is the call its assign() makes.
            await consumer._client.set_topics([self.topic])
            available = consumer.partitions_for_topic(self.topic) or set()
            wanted = set(self._wanted) if self._wanted is not None else available
            if not available or not wanted <= available:
                raise LedgerError(
                    f"topic {self.topic} has partitions {sorted(available)}, need {sorted(wanted)}"
                )
        except BaseException:
            await consumer.stop()
            raise
        self.partitions = sorted(wanted)
        consumer.assign([TopicPartition(self.topic, p) for p in self.partitions])
        self._consumer = consumer

    def seek(self, positions: Mapping[int, int]) -> None:
        """Position each partition at its stored next offset, or at the beginning when none is stored."""
        consumer = self._ready()
        fresh = [TopicPartition(self.topic, p) for p in self.partitions if p not in positions]
        for p in self.partitions:
            if p in positions:
                consumer.seek(TopicPartition(self.topic, p), positions[p])
        if fresh:
            self._run(consumer.seek_to_beginning(*fresh))

    def poll(self, timeout_ms: int, max_records: int) -> list[Any]:
        """Up to `max_records` records (each with topic, partition, offset, key, value), in offset order."""
        batch = self._run(self._ready().getmany(timeout_ms=timeout_ms, max_records=max_records))
        return [record for part in batch.values() for record in part]

    def end_offsets(self) -> dict[int, int]:
        """The next offset to be written, per assigned partition."""
        tps = [TopicPartition(self.topic, p) for p in self.partitions]
        ends = self._run(self._ready().end_offsets(tps))
        return {tp.partition: end for tp, end in ends.items()}

    def position(self, partition: int) -> int:
        """The next offset the consumer will read: past any transaction markers it stepped over."""
        found: int = self._run(self._ready().position(TopicPartition(self.topic, partition)))
        return found

    def highwater(self, partition: int) -> int | None:
        """The last high watermark a fetch saw, or None before the first fetch."""
        found: int | None = self._ready().highwater(TopicPartition(self.topic, partition))
        return found

    def _ready(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise LedgerError("the Kafka fetcher is not open")
        return self._consumer

    def close(self) -> None:
        """Disconnect and release the event loop; nothing is committed to Kafka."""
        if self._consumer is not None:
            consumer, self._consumer = self._consumer, None
            self._run(consumer.stop())
        self._loop.close()
