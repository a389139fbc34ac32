"""quix's TTL sweep, started where the last one ended instead of at the first key of the expiry index.

quix-streams sweeps a partition's expiry index (`__ttl_index__`, keys of 8-byte big-endian expiry +
user key) at every checkpoint that changed something, and it walks it from `b""`. Every entry it
evicts leaves a RocksDB delete marker, and each later walk steps over all of them again until a
flush and compaction drop them: measured in BENCHMARKS.md, a sweep of 50 entries went from 0.09 ms
to 17-19 ms after 125,000 evictions, and the worker sweeps every 100 ms.

`FlooredPartition` keeps, in memory, a floor below which the index is known to be empty: every key a
sweep walked past was deleted by it, unless the same flush re-wrote it, and the floor never passes a
key this flush writes (a late call's entry may sort below it). The floor only moves after the flush
that deleted those keys is written; a failed write, a write quix makes outside a checkpoint's flush
(recovery, rebuilds, backfills) or a new partition object start it again from `b""`, which is quix's
own walk. So the sweep deletes exactly what quix's would, and no entry is stranded below the floor.

The same subclass reads without quix's runtime `cast(Union[bytes, Literal[Marker.UNDEFINED]], ...)`,
which typing's caches made 3-4% of a drain's samples (py-spy, BENCHMARKS.md), and it remembers the
keys of the default column family it found absent until the next write to RocksDB: quix reads a
key's committed value again when a TTL `set` of it is staged (to drop a stale index entry), and for a
new call's dedupe key that second read is always a miss of the same key. Every write quix makes to that
column family goes through `_write` (a flush's `write` too), which forgets the absent keys first.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from quixstreams.state.metadata import Marker
from quixstreams.state.rocksdb import RocksDBStore
from quixstreams.state.rocksdb.partition import TTL_INDEX_CF_NAME, RocksDBStorePartition

from services.processor import changelog_produce

# Absent keys remembered at most, per partition (a checkpoint's new calls; the memory starts again
# beyond it), so a worker holds at most its partitions times this many.
ABSENT_LIMIT = 200_000


def next_floor(floor: bytes | None, walked_to: bytes | None, written: Iterable[bytes]) -> bytes | None:
    """The floor after a sweep that started at `floor`, last saw `walked_to`, in a flush writing `written`.

    Every index key below `walked_to` was deleted by the sweep or re-written by the flush; keys the
    flush writes may sort anywhere, so the floor stays at or below the lowest of them.
    """
    reached = walked_to if walked_to is not None else floor
    if reached is None:
        return None
    lowest = min(written, default=None)
    return lowest if lowest is not None and lowest < reached else reached


class _FlooredIndex:
    """The expiry index as one sweep sees it: the walk starts at the floor and remembers its last key."""

    def __init__(self, index: Any, floor: bytes | None) -> None:
        self._index, self._floor = index, floor
        self.walked_to: bytes | None = None

    def items(self, from_key: bytes = b"", read_opt: Any = None) -> Iterator[tuple[bytes, bytes]]:
        """The index from max(from_key, floor) on, in key order."""
        if self._floor is not None and self._floor > from_key:
            # A seek, not ReadOptions.set_iterate_lower_bound: rocksdict 0.3's sets the upper bound.
            from_key = self._floor
        for item in self._index.items(from_key=from_key, read_opt=read_opt):
            self.walked_to = item[0]
            yield item

    def __getattr__(self, name: str) -> Any:
        return getattr(self._index, name)


class FlooredPartition(RocksDBStorePartition):
    """A RocksDB store partition whose TTL sweep starts at a floor kept in memory (module docstring)."""

    # Class defaults: quix's __init__ writes to RocksDB (through `_write`) before ours could run.
    sweep_floor: bytes | None = None
    _pending: tuple[object, bytes | None] | None = None
    _in_flush = False
    _absent: set[bytes] | None = None  # default-CF keys read as absent since the last write

    def sweep_expired_into_cache(
        self, cache: Any, staged_default_keys: set[bytes], staged_ttl_index_keys: set[bytes]
    ) -> None:
        """quix's prepare-time sweep over the index from the floor; the next floor waits for the write."""
        self._pending = None
        index = self.get_or_create_column_family(TTL_INDEX_CF_NAME)
        floored = _FlooredIndex(index, self.sweep_floor)
        self._cf_cache[TTL_INDEX_CF_NAME] = floored  # type: ignore[assignment]  # what quix's sweep asks for
        try:
            super().sweep_expired_into_cache(cache, staged_default_keys, staged_ttl_index_keys)
        finally:
            self._cf_cache[TTL_INDEX_CF_NAME] = index
        self._pending = (cache, next_floor(self.sweep_floor, floored.walked_to, staged_ttl_index_keys))

    def write(self, cache: Any, changelog_offset: int | None, batch: Any = None) -> None:
        """quix's flush; the floor its sweep reached holds once the batch is written, and only then."""
        pending, self._pending, self._in_flush = self._pending, None, True
        try:
            super().write(cache, changelog_offset, batch)
        except BaseException:
            self.sweep_floor = None
            raise
        finally:
            self._in_flush = False
        # A flush whose sweep we did not see may have written index keys anywhere: start again.
        self.sweep_floor = pending[1] if pending is not None and pending[0] is cache else None

    def get(self, key: bytes, cf_name: str = "default") -> Any:
        """The stored bytes, or Marker.UNDEFINED (quix's get, without the cast, remembering misses)."""
        if cf_name != "default":
            return self.get_or_create_column_family(cf_name).get(key, default=Marker.UNDEFINED)
        absent = self._absent
        if absent is not None and key in absent:
            return Marker.UNDEFINED
        found = self.get_or_create_column_family(cf_name).get(key, default=Marker.UNDEFINED)
        if found is Marker.UNDEFINED:
            if absent is None or len(absent) >= ABSENT_LIMIT:
                absent = self._absent = set()
            absent.add(key)
        return found

    def _write(self, batch: Any) -> None:
        self._absent = None
        if not self._in_flush:
            self.sweep_floor = None  # recovery, rebuilds and backfills write the index directly
        super()._write(batch)


class FlooredStore(RocksDBStore):
    """quix's RocksDB store, opening `FlooredPartition`s."""

    def create_new_partition(self, partition: int) -> RocksDBStorePartition:
        """The partition quix opens, with the floored sweep and the fast changelog producer
        (changelog_produce.py) from its first checkpoint on."""
        opened = super().create_new_partition(partition)
        # FlooredPartition adds no state of its own to set up (class defaults: a floor of None), so the
        # opened partition becomes one; quix's open-time writes saw no floor to forget.
        opened.__class__ = FlooredPartition
        changelog_produce.install(opened._changelog_producer)
        return opened


def install(stores: dict[Any, dict[str, Any]]) -> int:
    """Make each plain RocksDB store of a quix app open floored partitions; how many were changed."""
    changed = 0
    for by_name in stores.values():
        for store in by_name.values():
            if type(store) is RocksDBStore:
                store.__class__ = FlooredStore
                changed += 1
    return changed
