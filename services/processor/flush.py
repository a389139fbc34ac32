"""The end of each checkpoint: due usage buckets leave as billable deltas, then the held writes reach quix.

quix-streams flushes its sinks first when it commits a checkpoint, before it produces the state
changelog and commits the Kafka transaction (quixstreams/checkpointing/checkpoint.py, step 1). This
hook is registered as such a sink and receives no records. Delivery: the deltas it produces and the
deletes of the buckets they close are in the checkpoint's transaction, with the input offsets; a
failed commit aborts both, and the re-read calls rebuild the same buckets.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from quixstreams.sinks import BaseSink

from services.core.clock import Clock
from services.core.events import dumps
from services.processor.batch import Batch
from services.processor.domain import usage
from services.processor.state import PartitionState

Produce = Callable[[str, bytes, bytes], None]  # topic, key, value
Open = tuple[int, Batch, PartitionState]


class UsageFlush:
    """Closes the open usage buckets of the licensees whose oldest bucket is `every` seconds old."""

    def __init__(self, input_topic: str, billable_topic: str, every: float, clock: Clock) -> None:
        self.input_topic, self.billable_topic, self.every, self.clock = (
            input_topic,
            billable_topic,
            every,
            clock,
        )

    def flush(self, partition: int, batch: Batch, state: PartitionState, produce: Produce) -> int:
        """Produce the due licensees' deltas and forget their buckets; the number of deltas."""
        sent = 0
        for licensee in state.due(self.clock.now().timestamp(), self.every):
            prefix = licensee.encode()
            buckets = {}
            for bucket in batch.get(prefix, usage.OPEN_KEY, None) or []:
                key = usage.BUCKET_PREFIX + bucket
                buckets[bucket] = batch.get(prefix, key, None)
                batch.delete(prefix, key)
            for delta in usage.deltas(licensee, buckets, self.input_topic, partition):
                produce(self.billable_topic, prefix, dumps(delta.to_cloudevent()))
                sent += 1
            batch.delete(prefix, usage.OPEN_KEY)
            state.closed(licensee)
        return sent

    def next_due(self, state: PartitionState) -> float | None:
        """When the partition's oldest open bucket falls due (epoch seconds), if it holds any."""
        return min(state.open.values()) + self.every if state.open else None


class CheckpointHook(BaseSink):
    """A quix sink that takes no records: its `flush` runs first in every checkpoint commit."""

    def __init__(
        self,
        opened: Callable[[], Iterable[Open]],
        done: Callable[[], None],
        usage_flush: UsageFlush,
        produce: Produce,
        due: Callable[[int, float | None], None],
    ) -> None:
        super().__init__()
        self.opened, self.done, self.usage_flush, self.produce, self.due = (
            opened,
            done,
            usage_flush,
            produce,
            due,
        )

    def flush(self) -> None:
        """Flush due usage, then hand each partition's held writes to its store transaction."""
        for partition, batch, state in self.opened():
            self.usage_flush.flush(partition, batch, state, self.produce)
            batch.write()
            self.due(partition, self.usage_flush.next_due(state))
        self.done()

    def add(self, *args: Any, **kwargs: Any) -> None:
        """Never called: no stream is sunk here."""
        raise NotImplementedError("the checkpoint hook receives no records")
