"""One checkpoint's view of one store partition: reads cached, writes held until the checkpoint ends.

quix-streams stamps, serialises and indexes a value on every `set`; a hot licensee's month counter
would pay that on every call. Here a checkpoint's records read and write a plain dict, and
`write()` hands quix each touched key once, with the stamp its last write asked for, just before the
checkpoint produces its changelog (flush.CheckpointHook runs first in quix's commit). So a batch
writes only the keys it touched, and each once. Delivery is unchanged: the writes still enter the
checkpoint's store transaction, which commits in the same Kafka transaction as the outputs and the
input offsets, or not at all. `Known` keeps the committed values of window-scoped keys across
checkpoints.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from services.processor import absent_read

_ABSENT = object()
_NEVER = None  # a write that never expires (deleted explicitly, like the open usage buckets)
Slot = tuple[bytes, str]


class Known:
    """The values this worker's committed checkpoints left in each store partition, for the keys that
    `remember` names, so a hot licensee's counters are read from quix once, not once per checkpoint.

    Only this worker writes a partition it owns, and a checkpoint that fails to commit stops the worker
    (its process state is rebuilt), so a remembered value is the committed one. Every assignment change
    forgets all of them. A partition's memory is emptied when it holds `limit` values.
    """

    def __init__(self, remember: Callable[[str], bool], limit: int = 100_000) -> None:
        self.remember, self.limit = remember, limit
        self._partitions: dict[int, dict[Slot, Any]] = {}

    def of(self, partition: int) -> dict[Slot, Any]:
        """The remembered values of one store partition (filled as its batches read and write)."""
        found = self._partitions.get(partition)
        if found is None or len(found) >= self.limit:
            found = self._partitions[partition] = {}
        return found

    def forget(self) -> None:
        """Forget every partition's values (partitions were assigned or revoked)."""
        self._partitions.clear()


class Batch:
    """The pending state of one store partition for one checkpoint (`transaction` is quix's)."""

    __slots__ = ("known", "pending", "remember", "transaction", "values")

    def __init__(
        self,
        transaction: Any,
        known: dict[Slot, Any] | None = None,
        remember: Callable[[str], bool] = lambda _key: False,
    ) -> None:
        self.transaction = transaction
        self.values: dict[Slot, Any] = {}
        # slot -> (value, expiry in ms or None, the record's event time in ms); None value = delete.
        self.pending: dict[Slot, tuple[Any, int | None, int | None]] = {}
        self.known, self.remember = known, remember

    def get(self, prefix: bytes, key: str, timestamp_ms: int | None) -> Any:
        """The live value of `key` under `prefix`: this checkpoint's own write, else the committed one
        (remembered, or quix's)."""
        slot = (prefix, key)
        value = self.values.get(slot, _ABSENT)
        if value is not _ABSENT:
            return value
        known = self.known
        if known is not None and self.remember(key):
            value = known.get(slot, _ABSENT)
            if value is _ABSENT:
                value = known[slot] = absent_read.get(self.transaction, key, prefix, timestamp_ms)
        else:
            value = absent_read.get(self.transaction, key, prefix, timestamp_ms)
        self.values[slot] = value
        return value

    def put(
        self, prefix: bytes, key: str, value: Any, expires_ms: int | None, timestamp_ms: int | None
    ) -> None:
        """Hold a write of `key` (expiring at `expires_ms` of event time, or never) until `write()`."""
        slot = (prefix, key)
        self.values[slot] = value
        self.pending[slot] = (value, expires_ms, timestamp_ms)

    def delete(self, prefix: bytes, key: str) -> None:
        """Hold a delete of `key` until `write()`."""
        slot = (prefix, key)
        self.values[slot] = None
        self.pending[slot] = (None, _NEVER, None)

    def write(self) -> int:
        """Hand every held write to quix's store transaction, once per key; the number written."""
        transaction = self.transaction
        for (prefix, key), (value, expires_ms, timestamp_ms) in self.pending.items():
            if value is None:
                transaction.delete(key, prefix)
            elif expires_ms is None:
                transaction.set(key, value, prefix, timestamp=timestamp_ms)
            else:
                # At least 1 ms: quix fails the whole transaction on a ttl that is not positive.
                ttl = timedelta(milliseconds=max(1, expires_ms - (timestamp_ms or 0)))
                transaction.set(key, value, prefix, timestamp=timestamp_ms, ttl=ttl)
        if self.known is not None:
            remember = self.remember
            self.known.update((slot, held[0]) for slot, held in self.pending.items() if remember(slot[1]))
        written = len(self.pending)
        self.pending = {}
        return written
