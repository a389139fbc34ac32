"""CPU per call of two quix paths the processor shortens: an absent key's read, and a changelog record.

    python -m bench.quix_paths [--reads 20000] [--records 100000] [--rounds 6] [--bootstrap HOST:PORT]

Reads: a fresh FlooredPartition of 100,000 TTL-stamped dedupe entries; each round reads `--reads` new
(absent) keys through quix's `transaction.get` and through `absent_read.get`, alternating. Records: each
round produces `--records` stamped-value records to a topic's partition 0 through quix's
`ChangelogProducer` and through `FastChangelogProducer`, alternating, and flushes; CPU time of the
process (librdkafka's threads included). Needs a broker ($TOLLGATE_KAFKA_BOOTSTRAP) for the records; JSON
on stdout, µs per call, medians of the rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
import uuid
from datetime import timedelta
from typing import Any

from quixstreams.internal_producer import InternalProducer
from quixstreams.state.recovery import ChangelogProducer

from services.processor import absent_read, changelog_produce
from services.processor.domain import dedupe
from services.processor.rocksdb_options import MemtableBloomOptions
from services.processor.sweep_floor import FlooredPartition

T0 = 1_700_000_000_000
PREFIX = b"licensee-01"
HEADERS = {
    "__column_family__": "default",
    "__processed_tp_offsets__": b'{"x": 1}',
    "__ttl_stamped__": b"\x01",
}


def _digest(text: str) -> str:
    """The dedupe key the processor would read for an event key of `text`."""
    return dedupe.DEDUPE_PREFIX + dedupe.digest(text)


def reads(count: int, rounds: int) -> dict[str, Any]:
    """µs of CPU per absent read, quix's path against the shortened one."""
    with tempfile.TemporaryDirectory(prefix="quix-paths-") as directory:
        partition = FlooredPartition(directory, options=MemtableBloomOptions())
        try:
            for chunk in range(20):
                tx = partition.begin()
                for i in range(5_000):
                    tx.set(_digest(f"{chunk}-{i}"), T0, prefix=PREFIX, timestamp=T0, ttl=timedelta(days=7))
                tx.prepare()
                tx.flush()
            found: dict[str, list[float]] = {"quix": [], "shortened": []}
            for n in range(rounds):
                for name in found:
                    tx = partition.begin()
                    keys = [_digest(f"new-{name}-{n}-{i}") for i in range(count)]
                    started = time.process_time()
                    if name == "quix":
                        for key in keys:
                            tx.get(key, PREFIX, timestamp=T0)
                    else:
                        for key in keys:
                            absent_read.get(tx, key, PREFIX, T0)
                    found[name].append((time.process_time() - started) / count * 1e6)
        finally:
            partition.close()
    return _summary(found)


def records(bootstrap: str, count: int, rounds: int) -> dict[str, Any]:
    """µs of CPU per changelog record (produce and flush), quix's path against the fast one."""
    from kafka.admin import KafkaAdminClient, NewTopic

    topic = f"bench.quix-paths.{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, 1, 1)])
    producer = InternalProducer(bootstrap, extra_config={"linger.ms": 50})
    try:
        quix, fast = ChangelogProducer(topic, 0, producer), ChangelogProducer(topic, 0, producer)
        changelog_produce.install(fast)
        found: dict[str, list[float]] = {"quix": [], "shortened": []}
        value = b"\x00" * 8 + b"1700000000"
        for _ in range(rounds):
            for name, changelog in (("quix", quix), ("shortened", fast)):
                started = time.process_time()
                for i in range(count):
                    changelog.produce(key=b"licensee-01|d:%016x" % i, value=value, headers=HEADERS)
                producer.flush()
                found[name].append((time.process_time() - started) / count * 1e6)
    finally:
        admin.delete_topics([topic])
        admin.close()
    return _summary(found)


def _summary(found: dict[str, list[float]]) -> dict[str, Any]:
    medians = {name: round(statistics.median(values), 2) for name, values in found.items()}
    return {
        "us_per_call": medians,
        "rounds": {name: [round(v, 2) for v in values] for name, values in found.items()},
        "ratio": round(medians["shortened"] / medians["quix"], 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=20_000)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--bootstrap", default=os.environ.get("TOLLGATE_KAFKA_BOOTSTRAP", ""))
    args = parser.parse_args()
    result: dict[str, Any] = {"absent_read": reads(args.reads, args.rounds)}
    if args.bootstrap:
        result["changelog_record"] = records(args.bootstrap, args.records, args.rounds)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
