"""Asks the broker which offsets of an input partition hold records (to tell a skip from a hole).

Offsets can be missing for real: a transactional producer's commit and abort markers take offsets, and a
`read_committed` reader skips aborted records. The probe reads the range with its own group-less consumer,
at the same isolation level as the worker's, so its answer is what faust should have delivered.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

log = logging.getLogger(__name__)
ISOLATION_LEVEL = "read_committed"


class HoleProbe(Protocol):
    """Lists the offsets that hold records in a range of a partition."""

    async def records_between(self, topic: str, partition: int, start: int, stop: int) -> list[int] | None:
        """Offsets of the records in [start, stop), None if the broker did not tell in time."""
        ...


@dataclass(slots=True)
class KafkaHoleProbe:
    """A short-lived group-less aiokafka consumer per question."""

    bootstrap: str
    options: dict[str, Any] = field(default_factory=dict)
    timeout_seconds: float = 3.0

    async def records_between(self, topic: str, partition: int, start: int, stop: int) -> list[int] | None:
        """See `HoleProbe`; a broker error reads as None."""
        tp = TopicPartition(topic, partition)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=None,
            enable_auto_commit=False,
            isolation_level=ISOLATION_LEVEL,
            **self.options,
        )
        try:
            await consumer.start()
            consumer.assign([tp])
            consumer.seek(tp, start)
            return await self._read(consumer, tp, stop)
        except KafkaError as exc:
            log.warning("probing %s[%d] %d..%d failed: %s", topic, partition, start, stop - 1, exc)
            return None
        finally:
            await consumer.stop()

    async def _read(self, consumer: AIOKafkaConsumer, tp: TopicPartition, stop: int) -> list[int] | None:
        stop = min(stop, int((await consumer.end_offsets([tp]))[tp]))
        deadline = time.monotonic() + self.timeout_seconds
        found: list[int] = []
        # A fetch of markers only returns no record but moves the position past them.
        while int(await consumer.position(tp)) < stop:
            if time.monotonic() > deadline:
                return None
            records = (await consumer.getmany(tp, timeout_ms=200)).get(tp, [])
            found.extend(int(r.offset) for r in records if r.offset < stop)
        return found


@dataclass(slots=True)
class InMemoryHoleProbe:
    """The probe's in-memory side: answers from a list of offsets per partition."""

    offsets: dict[int, list[int]] = field(default_factory=dict)

    async def records_between(self, topic: str, partition: int, start: int, stop: int) -> list[int] | None:
        """The listed offsets in [start, stop)."""
        return sorted(o for o in self.offsets.get(partition, []) if start <= o < stop)
