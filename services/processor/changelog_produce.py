"""quix's changelog producer, handing each state change to librdkafka in one call instead of five.

At every checkpoint quix produces one changelog record per changed key: through `ChangelogProducer`,
`InternalProducer` and quix's `Producer`, which builds and filters a keyword dict, wraps the call in a
BufferError retry loop and polls after each record. With a counted call costing two records (its dedupe
entry, and later the tombstone of the entry it pushed out of the horizon), that walk was about 8% of a
drain's main thread (py-spy, BENCHMARKS.md). `FastChangelogProducer` calls librdkafka's `produce` itself
for the normal, transactional changelog record, with the same topic, partition, key, value, headers and
delivery callback as quix's path, and polls once every `POLL_EVERY` records instead of after each.

Delivery is unchanged: each record carries quix's own `InternalProducer._on_delivery`, which records the
changelog offset and latches a delivery error that quix raises before it commits; a full local queue
(BufferError) falls back to quix's path, which polls and retries; migration and backfill records, and
records with a callback of their own, take quix's path. The records join the checkpoint's Kafka
transaction as before, so they commit with the outputs and the input offsets, or not at all.
"""

from __future__ import annotations

from typing import Any

from quixstreams.state.recovery import ChangelogProducer

# Delivery reports are served this often (and at every flush); librdkafka queues up to 100,000 records.
POLL_EVERY = 1_000


class FastChangelogProducer(ChangelogProducer):
    """A ChangelogProducer whose normal records go to librdkafka directly (module docstring)."""

    # Class default: instances are made by quix and become this class afterwards (`install`).
    _unpolled = 0

    def produce(
        self,
        key: bytes,
        value: bytes | None = None,
        headers: Any = None,
        migration: bool = False,
        on_delivery: Any = None,
    ) -> None:
        """Produce one changelog record (quix's path for migration records, callbacks, a full queue)."""
        if migration or on_delivery is not None or headers is None:
            super().produce(key, value, headers, migration, on_delivery)
            return
        internal = self._producer
        internal._raise_for_error()
        inner = internal._producer._producer
        try:
            inner.produce(
                self._changelog_name,
                value,
                key,
                partition=self._partition,
                headers=headers,
                on_delivery=internal._on_delivery,
            )
        except BufferError:
            super().produce(key, value, headers)  # quix's path polls, then retries
            return
        self._unpolled += 1
        if self._unpolled >= POLL_EVERY:
            self._unpolled = 0
            inner.poll(0)


def install(producer: ChangelogProducer | None) -> bool:
    """Make a partition's changelog producer a FastChangelogProducer; False when there is none to change."""
    if producer is None or type(producer) is not ChangelogProducer:
        return False
    producer.__class__ = FastChangelogProducer
    return True
