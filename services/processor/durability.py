"""Offsets are committed only after the state and outputs of the events before them are acknowledged.

What faust-streaming 0.15.3 does on a (non-transactional) commit, `Consumer._commit_tps`:
1. `_handle_attached`: publishes the sends attached to the offsets being committed and waits for their
   acks. Sends are attached only with `stream_publish_on_commit=True` (default False): by default
   `topic.send()` inside an agent goes straight to aiokafka's accumulator;
2. `_commit_offsets`: `await app.producer.flush()`, then commits. aiokafka's flush waits for every
   batch in its accumulator, but a send that failed does not make it raise.
Table changelog records are not attached: `Table.__setitem__` hands them to `ProducerBuffer.put`
(`send_soon`). `ProducerBuffer.flush()` gives up after 0.1 s without progress (`flush_atmost`), and a
record taken off the buffer but still waiting for topic metadata is not yet in aiokafka's accumulator, so
step 2 can commit an offset whose state change was never written. `DurableTable` keeps every
changelog future until it is acknowledged, and `guard_commits` makes `producer.flush()` wait for them,
so a commit never gets ahead of the state. The agent tracks its output sends the same way (immediate
sends keep alert latency in milliseconds, where attached sends would wait for the commit interval).
A failed changelog or output write makes the flush raise, the worker
crashes and restarts from the last commit: replays are re-emitted and deduped by the sinks.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any

import faust
from faust.types.tuples import FutureMessage

from services.processor.errors import ProcessorError

log = logging.getLogger(__name__)


class ChangelogWriteFailed(ProcessorError):
    """The broker refused a table changelog record: offsets must not be committed past it."""


class BatchAbandoned(ProcessorError):
    """A batch stopped half-way (error or cancellation): the worker must restart from its last commit."""


class DurableTable(faust.Table):
    """A faust Table that remembers its changelog sends until the broker acknowledges them."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._unacked: set[asyncio.Future[Any]] = set()
        self._failure: BaseException | None = None
        self._fatal: BaseException | None = None
        self._partition: int | None = None

    def put(self, key: str, value: bytes, partition: int) -> None:
        """Set `key`, writing its changelog record to `partition` (the input partition of the key)."""
        # faust takes the changelog partition from the current event; a batch spans several partitions.
        self._partition = partition
        try:
            self[key] = value
        finally:
            self._partition = None

    def partition_for_key(self, key: Any) -> int | None:
        """The partition named by `put`, else faust's (the current event's)."""
        if self._partition is not None:
            return self._partition
        return super().partition_for_key(key)

    @property
    def unacked(self) -> int:
        """How many tracked records wait for the broker's acknowledgement."""
        return len(self._unacked)

    def failure(self) -> str | None:
        """Why this worker must not commit any more, if it must not."""
        return repr(self._fatal) if self._fatal is not None else None

    def poison(self, reason: BaseException) -> None:
        """Refuse every later commit: a batch stopped half-way may already be acked by faust."""
        self._fatal = reason

    def send_changelog(self, *args: Any, **kwargs: Any) -> FutureMessage:
        """Send the change as faust does, and track it."""
        future = super().send_changelog(*args, **kwargs)
        self.track(future)
        return future

    def track(self, send: Awaitable[Any]) -> None:
        """Hold the next offset commit until `send` (a faust FutureMessage) is acknowledged."""
        future = asyncio.ensure_future(send)  # a FutureMessage already is a future: returned as is
        self._unacked.add(future)
        future.add_done_callback(self._settled)

    def _settled(self, future: asyncio.Future[Any]) -> None:
        self._unacked.discard(future)
        if not future.cancelled() and future.exception() is not None:
            self._failure = future.exception()

    async def wait_acknowledged(self) -> None:
        """Return once every record tracked so far is acknowledged; raise if one failed."""
        # Only what is tracked now: the offsets being committed were read before this wait, so records
        # sent meanwhile belong to later offsets. Waiting for those too starved commits under load.
        pending = list(self._unacked)
        if pending:
            await asyncio.wait(pending)
        if self._fatal is not None:
            raise BatchAbandoned("a batch stopped half-way: no offset may be committed") from self._fatal
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise ChangelogWriteFailed(f"table {self.name} changelog write failed") from failure


def guard_commits(app: faust.App, table: DurableTable) -> None:
    """Make the flush that precedes every offset commit also wait for the table's changelog acks."""
    producer = app.producer
    if getattr(producer, "_tollgate_guarded", False):
        return
    flush = producer.flush

    async def flush_then_wait_for_changelog() -> None:
        await flush()
        await table.wait_acknowledged()

    # Instance attribute: only this app's producer changes; faust calls `self.app.producer.flush()`.
    setattr(producer, "flush", flush_then_wait_for_changelog)  # noqa: B010 - mypy forbids assigning a method
    setattr(producer, "_tollgate_guarded", True)  # noqa: B010
    log.info("commit guard installed: offsets wait for table changelog acknowledgements")
