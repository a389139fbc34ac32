"""Every worker's full view of the compacted agreements topic, kept current in the background.

A group-less consumer assigned every partition reads from the beginning, so each worker sees every
agreement whatever input partitions it owns. Workers wait until the view reached the end offsets seen
at start-up before they process calls (else every licensee would look `agreement.missing`).
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from services.core.agreements import Agreement, agreement_from_cloudevent
from services.core.errors import ValidationFailed
from services.core.events import loads
from services.core.security import PLAINTEXT, KafkaSecurity
from services.processor.errors import AgreementsNotReady

log = logging.getLogger(__name__)


class AgreementsView:
    """licensee_id -> latest valid Agreement, read from the compacted topic."""

    def __init__(self, bootstrap: str, topic: str, security: KafkaSecurity = PLAINTEXT) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.security = security
        self.agreements: dict[str, Agreement] = {}
        self.ready = asyncio.Event()

    def get(self, licensee_id: str) -> Agreement | None:
        """The licensee's agreement, if any."""
        return self.agreements.get(licensee_id)

    async def wait_ready(self, timeout: float) -> None:
        """Block until caught up with the topic's end offsets at start-up."""
        try:
            await asyncio.wait_for(self.ready.wait(), timeout)
        except TimeoutError as exc:
            raise AgreementsNotReady(
                f"agreements topic {self.topic} not read to its end in {timeout:.0f}s"
            ) from exc

    async def run(self) -> None:
        """Read the topic forever; reconnect on errors."""
        while True:
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self.bootstrap,
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                **self.security.aiokafka(),
            )
            try:
                await consumer.start()
                await self._follow(consumer)
            except KafkaError as exc:
                log.warning("agreements reader failed, retrying: %s", exc)
                await asyncio.sleep(1.0)
            finally:
                await consumer.stop()

    async def _follow(self, consumer: AIOKafkaConsumer) -> None:
        partitions = await self._partitions(consumer)
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        while True:
            batches = await consumer.getmany(timeout_ms=500)
            for messages in batches.values():
                for message in messages:
                    self._apply(message.key, message.value)
            if not self.ready.is_set() and await _caught_up(consumer, ends):
                log.info("agreements view caught up: %d agreements", len(self.agreements))
                self.ready.set()

    async def _partitions(self, consumer: AIOKafkaConsumer) -> list[TopicPartition]:
        while True:
            found = consumer.partitions_for_topic(self.topic)
            if found:
                return [TopicPartition(self.topic, p) for p in sorted(found)]
            log.info("waiting for topic %s to exist", self.topic)
            await consumer._client.force_metadata_update()  # public API has no other way to refresh
            await asyncio.sleep(0.5)

    def _apply(self, key: bytes | None, value: bytes | None) -> None:
        licensee = key.decode("utf-8", errors="replace") if key else None
        if value is None:
            if licensee:
                self.agreements.pop(licensee, None)
            return
        try:
            agreement = agreement_from_cloudevent(loads(value))
        except (ValidationFailed, ValueError, KeyError, TypeError) as exc:
            log.error("ignoring invalid agreement for key %r: %s", licensee, exc)
            return
        self.agreements[agreement.licensee_id] = agreement
        log.info("agreement for %s applied", agreement.licensee_id)


async def _caught_up(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    for tp, end in ends.items():
        if int(await consumer.position(tp)) < end:
            return False
    return True
