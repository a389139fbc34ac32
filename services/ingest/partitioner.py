"""The default partitioner's choice, remembered per key: murmur2 in pure Python costs more than a lookup."""

from __future__ import annotations

from typing import Any

from kafka.partitioner.abc import Partitioner
from kafka.partitioner.default import DefaultPartitioner

# Keys (licensee ids) remembered per topic and partition count; emptied when this many are held.
MEMO_LIMIT = 65_536


class RememberingPartitioner(Partitioner):
    """kafka-python's DefaultPartitioner (murmur2 of the key over all partitions, as the Java client does),
    computed once per key and partition count. A record without a key is the default's to place."""

    def __init__(self) -> None:
        self._default = DefaultPartitioner()
        self._chosen: dict[tuple[str, int, bytes], int] = {}

    def partition(
        self,
        topic: str,
        key: Any,
        serialized_key: bytes | None,
        value: Any,
        serialized_value: bytes | None,
        cluster: Any,
    ) -> int:
        """The partition of `serialized_key` in `topic`: the same as DefaultPartitioner's."""
        partitions = cluster.partitions_for_topic(topic)
        default = self._default.partition
        if serialized_key is None or not partitions:
            chosen: int = default(topic, key, serialized_key, value, serialized_value, cluster)
            return chosen
        # Kafka numbers a topic's partitions 0..n-1 and can only add some: the count decides the choice.
        memo = (topic, len(partitions), bytes(serialized_key))
        found = self._chosen.get(memo)
        if found is None:
            found = default(topic, key, serialized_key, value, serialized_value, cluster)
            if len(self._chosen) >= MEMO_LIMIT:
                self._chosen.clear()
            self._chosen[memo] = found
        return found
