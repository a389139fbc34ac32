"""One batch's PostgreSQL write on its own thread while the consumer reads and decodes the next batch.

Delivery guarantee: unchanged by the overlap. At most one write is in flight, and the next batch's write is
handed over only after the one before it committed (`settle`), so batches commit in offset order and a
batch's stored offsets never run ahead of a batch that failed. A failed write raises from `settle` before
the batch read ahead is handed over; the consumer rolls back, drops that batch and seeks back to the
offsets stored in PostgreSQL, so nothing is skipped and nothing is stored twice. The consumer's connection
is used by one thread at a time: the writer while a write is in flight, the consumer's own thread only
after `settle` or `discard` (claims, seeks, reconnects).

Why: on this path PostgreSQL stores a batch (the chain links, the rollup, the duplicate check) while the
consumer's thread decodes the next one, so the two run on two cores instead of taking turns. The wait on
PostgreSQL's answer releases the GIL.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

log = logging.getLogger(__name__)

Write = Callable[[], int]


class WriteAhead:
    """At most one batch's write in flight, with the end offsets it stores."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._executor: ThreadPoolExecutor | None = None
        self._future: Future[int] | None = None
        self._ends: dict[int, int] = {}

    @property
    def busy(self) -> bool:
        """True while a write was handed over and not settled yet."""
        return self._future is not None

    @property
    def ends(self) -> dict[int, int]:
        """The offsets the write in flight stores (empty when none is)."""
        return self._ends if self._future is not None else {}

    def submit(self, write: Write, ends: dict[int, int]) -> None:
        """Start `write` on the writer thread; the one before must have been settled."""
        if self._future is not None:
            raise RuntimeError("a write is already in flight: settle it first")
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix=self._name)
        self._ends = ends
        self._future = self._executor.submit(write)

    def settle(self) -> tuple[int, dict[int, int]] | None:
        """Wait for the write in flight: (rows stored, offsets stored), None if none; raises its error."""
        future, self._future = self._future, None
        if future is None:
            return None
        return future.result(), self._ends

    def discard(self) -> None:
        """Wait for the write in flight and forget it (the consumer seeks back to what was stored)."""
        try:
            self.settle()
        except Exception as exc:  # the caller settles first where the outcome matters (consumer_loop)
            log.warning("%s: the write in flight failed, rolled back: %s", self._name, exc)

    def close(self) -> None:
        """Wait for the write in flight, then stop the writer thread."""
        self.discard()
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
