"""The ledger's Kafka reads: positions from PostgreSQL, nothing committed to Kafka.

Either a static assignment (a list of partitions, or all of them, without a group), or a Kafka consumer group
that splits the topic between instances (adapters/postgres/ownership.py): a newly assigned partition stays
paused until the consumer has claimed it in PostgreSQL and sought it to its stored offset, so no record is
read from a position Kafka chose. The group's rebalance callbacks run only inside this fetcher's calls (its
event loop runs nowhere else), on the consumer's own thread. They only note the moves and pause partitions:
the batch the writer thread may be storing meanwhile (write_ahead.py) is never touched by them, and the
consumer applies the moves only after that batch settled.

aiokafka parses record batches in C (about 3x kafka-python's pure-Python unpacking on this workload), so
the fetch path uses it, driven synchronously from the consumer's own thread on a private event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Mapping, Sequence
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener
from aiokafka.errors import KafkaError as AioKafkaError
from aiokafka.structs import TopicPartition

from services.core.security import KafkaSecurity
from services.ledger.errors import LedgerError

T = TypeVar("T")
FETCH_MAX_BYTES = 64 * 1024 * 1024  # one fetch may bring a whole batch across all partitions
PARTITION_FETCH_BYTES = 8 * 1024 * 1024
KafkaFailure = AioKafkaError


class Group:
    """A Kafka consumer group to split the topic in: its id and session timeout."""

    def __init__(self, group_id: str, session_timeout_ms: int) -> None:
        self.group_id = group_id
        self.session_timeout_ms = session_timeout_ms

    def options(self) -> dict[str, Any]:
        """aiokafka's group options: heartbeats a third of the session timeout (at most 3 s)."""
        return {
            "group_id": self.group_id,
            "session_timeout_ms": self.session_timeout_ms,
            "heartbeat_interval_ms": min(3000, self.session_timeout_ms // 3),
        }


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    """Records what the group moved; pauses new partitions until the consumer has positioned them."""

    def __init__(self, fetcher: Fetcher) -> None:
        self.fetcher = fetcher

    async def on_partitions_revoked(self, revoked: Any) -> None:
        self.fetcher.moved(revoked=[tp.partition for tp in revoked])

    async def on_partitions_assigned(self, assigned: Any) -> None:
        self.fetcher._ready().pause(*assigned)
        self.fetcher.moved(assigned=[tp.partition for tp in assigned])


class Fetcher:
    """One topic's partitions (static, or as its group assigns them), read from explicit positions."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        partitions: Sequence[int] | None,
        batch_max: int,
        *,
        security: KafkaSecurity,
        group: Group | None = None,
    ) -> None:
        self.topic = topic
        self._security = security
        self.partitions: list[int] = []  # the assignment: static, or the group's current one
        self._bootstrap = bootstrap
        self._wanted = partitions
        self._batch_max = batch_max
        self._group = group
        self._assigned: set[int] = set()
        self._revoked: set[int] = set()
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
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            # The processor writes in Kafka transactions: only committed billable records are usage.
            isolation_level="read_committed",
            max_poll_records=self._batch_max,
            fetch_max_bytes=FETCH_MAX_BYTES,
            max_partition_fetch_bytes=PARTITION_FETCH_BYTES,
            client_id="tollgate-ledger",
            **(self._group.options() if self._group else {"group_id": None}),
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
        self._consumer = consumer
        if self._group is not None:  # the group assigns on the first poll; see _Rebalance
            consumer.subscribe([self.topic], listener=_Rebalance(self))
            return
        self.partitions = sorted(wanted)
        consumer.assign([TopicPartition(self.topic, p) for p in self.partitions])

    def moved(self, assigned: Sequence[int] = (), revoked: Sequence[int] = ()) -> None:
        """Note a rebalance (called by the group's listener); `changes` hands it to the consumer."""
        self._revoked.update(revoked)
        self._assigned.difference_update(revoked)
        self._assigned.update(assigned)
        self.partitions = sorted((set(self.partitions) - set(revoked)) | set(assigned))

    def moved_since(self) -> bool:
        """True when the group moved partitions since the last `changes`."""
        return bool(self._assigned or self._revoked)

    def changes(self) -> tuple[set[int], set[int]]:
        """The partitions assigned and revoked since the last call (a partition may be in both)."""
        assigned, revoked = self._assigned, self._revoked
        self._assigned, self._revoked = set(), set()
        return assigned, revoked

    def seek(self, positions: Mapping[int, int], partitions: Sequence[int] | None = None) -> None:
        """Position each partition (default: all assigned) at its stored next offset, else the beginning."""
        consumer = self._ready()
        chosen = self.partitions if partitions is None else partitions
        fresh = [TopicPartition(self.topic, p) for p in chosen if p not in positions]
        for p in chosen:
            if p in positions:
                consumer.seek(TopicPartition(self.topic, p), positions[p])
        if fresh:
            self._run(consumer.seek_to_beginning(*fresh))

    def pause(self, partitions: Sequence[int], paused: bool = True) -> None:
        """Stop (or resume) fetching the partitions, as long as they stay assigned."""
        tps = [TopicPartition(self.topic, p) for p in partitions if p in self.partitions]
        if tps:
            self._run(self._pause(tps, paused))

    async def _pause(self, tps: list[TopicPartition], paused: bool) -> None:
        consumer = self._ready()  # aiokafka pauses and resumes inside its event loop only
        (consumer.pause if paused else consumer.resume)(*tps)

    def idle(self, seconds: float) -> None:
        """Wait while the group's heartbeats go on (a backoff must not cost the assignment)."""
        self._run(asyncio.sleep(seconds))

    def poll(self, timeout_ms: int, max_records: int) -> list[Any]:
        """Up to `max_records` records (each with topic, partition, offset, key, value), in offset order."""
        batch = self._run(self._ready().getmany(timeout_ms=timeout_ms, max_records=max_records))
        return [record for part in batch.values() for record in part]

    def end_offsets(self, partitions: Sequence[int] | None = None) -> dict[int, int]:
        """The next offset to be written, per partition (default: every assigned one)."""
        chosen = self.partitions if partitions is None else partitions
        tps = [TopicPartition(self.topic, p) for p in chosen]
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
