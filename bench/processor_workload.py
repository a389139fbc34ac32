"""The processor bench's workload on Kafka: topics, agreements, Zipf-skewed calls, a fast producer.

The calls: `licensees` licensees, Zipf-skewed so the first has `top_share` of the traffic (the issue:
50 licensees, one with 30%). Event times advance steadily, at the same density as the pre-filled
dedupe keys (bench/dedupe_prefill.py), so a drain expires about as many old keys as it adds: the
store stays at its size, as in a steady state. A share of each batch re-sends pre-filled calls (same
`source` + `id`, still inside the horizon): the processor must count them as duplicates, which proves
it reads the pre-filled store.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from kafka.partitioner.default import murmur2

from bench.processor_maths import split, spread
from services.core.agreements import load_agreements
from services.core.events import ApiCall, dumps
from services.demo.scenario import AGREEMENTS_FILE

PARTITIONS = 6
KINDS = ("INPUT", "DLQ", "AGREEMENTS", "ALERTS", "BILLABLE")
# (partition, key, value, headers): one record for produce_all
Record = tuple[int, bytes, bytes | None, list[tuple[str, bytes]]]


def licensee(index: int) -> str:
    """The bench's name of licensee `index` (0 is the biggest)."""
    return f"lic-{index}"


def partition_of(key: bytes, partitions: int = PARTITIONS) -> int:
    """The partition Kafka's default (murmur2) partitioner gives `key`, as kafka-python and Java do."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def create_topics(bootstrap: str, extra: Sequence[str] = ()) -> dict[str, str]:
    """Fresh topics for one bench (and `extra` names, also created); name by kind."""
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    names = {kind: f"{prefix}.{kind}" for kind in KINDS}
    names.update({kind: f"{prefix}.{kind}" for kind in extra})
    topics = [NewTopic(name, PARTITIONS, 1) for name in names.values()]
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics(topics).values():
        future.result(30)
    return names


def create_compacted(bootstrap: str, topic: str) -> None:
    """A compacted topic of PARTITIONS partitions (a changelog the bench pre-fills)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    new = NewTopic(topic, PARTITIONS, 1, config={"cleanup.policy": "compact"})
    admin.create_topics([new])[topic].result(30)


def fast_producer(bootstrap: str) -> Producer:
    """A librdkafka producer tuned for bulk loading: acks=all, big zstd batches (not lz4: kafka-python
    readers, such as the processor's agreements view, cannot read lz4 without an extra package)."""
    return Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "linger.ms": 50,
            "batch.size": 1_000_000,
            "compression.type": "zstd",
            "queue.buffering.max.messages": 500_000,
        }
    )


def produce_all(producer: Producer, topic: str, records: Iterable[Record]) -> int:
    """Produce (partition, key, value, headers) records, waiting when the local queue is full."""
    count = 0
    for partition, key, value, headers in records:
        while True:
            try:
                producer.produce(topic, value, key, partition=partition, headers=headers or None)
                break
            except BufferError:
                producer.poll(0.05)
        count += 1
        if count % 10_000 == 0:
            producer.poll(0)
    if producer.flush(120) != 0:
        raise RuntimeError(f"{topic}: records still unsent after 120 s")
    return count


def load_agreements_for(bootstrap: str, topic: str, licensees: int) -> None:
    """The demo's `pebble` agreement, once per bench licensee."""
    pebble = next(a for a in load_agreements(AGREEMENTS_FILE) if a.licensee_id == "pebble")
    records: list[Record] = []
    for index in range(licensees):
        name = licensee(index)
        agreement = replace(pebble, licensee_id=name, raw={**pebble.raw, "licensee_id": name})
        records.append((partition_of(name.encode()), name.encode(), dumps(agreement.to_cloudevent()), []))
    produce_all(fast_producer(bootstrap), topic, records)


def call(call_id: str, index: int, at: float, source: str | None = None) -> ApiCall:
    """One API call of licensee `index` at epoch second `at`."""
    when = datetime.fromtimestamp(at, UTC)
    return ApiCall(
        call_id,
        source or f"bench-{index}",
        when,
        licensee(index),
        "pebble-app",
        "/x",
        "GET",
        200,
        10,
        900,
        "reader",
        "commercial",
    )


@dataclass(frozen=True)
class Batch:
    """What one pre-filled input batch holds."""

    events: int
    resends: int  # re-sent pre-filled calls: must come out as duplicates
    start: float
    seconds: float


def batch_calls(
    weights: Sequence[float],
    events: int,
    start: float,
    seconds: float,
    resends: Sequence[tuple[int, str, float]],
) -> list[ApiCall]:
    """`events` new calls split by `weights` over [start, start + seconds), plus `resends`, in time order.

    Each resend is (licensee index, call id, its original event time) of a pre-filled call.
    """
    tag = uuid.uuid4().hex[:6]
    calls = [
        call(f"{tag}-{lic}-{n}", lic, at)
        for lic, count in enumerate(split(events, weights))
        for n, at in enumerate(spread(count, start, seconds))
    ]
    calls += [call(call_id, lic, at) for lic, call_id, at in resends]
    # The resends go in at the time they were re-sent, not their event time: among the batch's start.
    return sorted(calls, key=lambda c: c.time.timestamp() if c.event_id[:4] != "pre-" else start)


def produce_calls(bootstrap: str, topic: str, calls: Sequence[ApiCall]) -> int:
    """Produce the calls keyed by licensee to their murmur2 partitions."""
    records: Iterable[Record] = (
        (partition_of(c.licensee_id.encode()), c.licensee_id.encode(), dumps(c.to_cloudevent()), [])
        for c in calls
    )
    return produce_all(fast_producer(bootstrap), topic, records)
