"""quix's state read, answering a key that is in neither the transaction nor the store without quix's layers.

Nearly every counted call reads one such key: its own dedupe entry, absent because the call is new. quix
answers that read through five calls (its status check, the TTL layer, the base lookup, the value
decoder), about 4 us a call on top of the store's own lookup (py-spy, BENCHMARKS.md). `get` does what
that path does for an absent key on a partition in TTL mode: it advances the partition's event-time
high-water with the record's timestamp, then looks the serialised key up in the transaction's update
cache and in the store. Anything else, a key found in either, a partition not in TTL mode, a transaction
that is not open or not quix's plain RocksDB one, goes through quix's own `get`, whose answer it is.
Reads change nothing, so delivery is not touched.
"""

from __future__ import annotations

from typing import Any

from quixstreams.state.base.transaction import PartitionTransactionStatus
from quixstreams.state.metadata import Marker
from quixstreams.state.rocksdb.partition import RocksDBStorePartition
from quixstreams.state.rocksdb.transaction import RocksDBPartitionTransaction

_STARTED = PartitionTransactionStatus.STARTED
_UNDEFINED = Marker.UNDEFINED


def get(transaction: Any, key: str, prefix: bytes, timestamp_ms: int | None) -> Any:
    """`transaction.get(key, prefix, timestamp=timestamp_ms)`, None for an absent key without quix's walk."""
    if type(transaction) is RocksDBPartitionTransaction and transaction._status is _STARTED:
        partition = transaction._partition
        if isinstance(partition, RocksDBStorePartition) and partition.uses_ttl_stamps:
            partition.advance_high_water(timestamp_ms)
            # quix's key serialiser takes str keys too (its stubs say bytes).
            serialized = transaction._serialize_key(key, prefix=prefix)  # type: ignore[arg-type]
            cache = transaction._update_cache
            if (
                cache.get(key=serialized, prefix=prefix, cf_name="default") is _UNDEFINED
                and partition.get(serialized) is _UNDEFINED
            ):
                return None
    return transaction.get(key, prefix, timestamp=timestamp_ms)
