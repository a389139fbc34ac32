"""Timing a drain: from the first handled record until the group committed the end offsets; and the
raw baseline, a confluent-kafka consume + parse + produce loop over the same records."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Mapping
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition

from bench.processor_maths import drain_rate
from bench.processor_worker import GroupWatch, Worker, pyspy


def wait_first_handled(worker: Worker, timeout: float) -> tuple[float, float]:
    """Poll the worker's metrics every 20 ms until it has handled a record: (monotonic time, count)."""
    deadline = time.monotonic() + timeout
    while True:
        worker.check_alive()
        count = worker.handled()
        if count > 0:
            return time.monotonic(), count
        if time.monotonic() > deadline:
            raise TimeoutError(f"the worker handled nothing within {timeout:.0f} s")
        time.sleep(0.02)


def time_drain(
    worker: Worker, watch: GroupWatch, events: int, ends: Mapping[int, int], timeout: float
) -> dict[str, Any]:
    """Time `worker` draining `events` records up to `ends`; start-up (recovery included) beside it."""
    first_seen, first_count = wait_first_handled(worker, timeout)
    cpu_first = worker.cpu_seconds()
    spy = pyspy(worker.process.pid)
    try:
        committed_at = watch.wait_committed(ends, timeout, worker.check_alive)
    finally:
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(60)
    cpu_end = worker.cpu_seconds()
    seconds = committed_at - first_seen
    cpu = cpu_end - cpu_first if cpu_first is not None and cpu_end is not None else None
    return {
        "events": events,
        "first_batch_events": int(first_count),
        "startup_s": round(first_seen - worker.spawned_at, 2),
        "seconds": round(seconds, 3),
        "events_per_s": drain_rate(events, first_count, first_seen, committed_at),
        # CPU seconds per wall second over the drain: 1.0 is one core kept busy.
        "worker_cpu_share": round(cpu / seconds, 2) if cpu is not None and seconds > 0 else None,
        "events_per_cpu_s": round((events - first_count) / cpu, 1) if cpu else None,
        "rss_mb": worker.rss_mb(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "duplicates": int(worker.handled(outcome="duplicate")),
        "counted": int(worker.handled(outcome="counted")),
    }


def raw_consume_produce(
    bootstrap: str, topic: str, starts: Mapping[int, int], ends: Mapping[int, int], out_topic: str
) -> dict[str, Any]:
    """Read [starts, ends) of `topic`, JSON-parse each value and produce one record per event to
    `out_topic` (acks=all, zstd, like the worker's outputs); events/s from the first record until the
    producer has flushed."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "bench-raw",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "fetch.max.bytes": 8 * 1024 * 1024,
        }
    )
    producer = Producer(
        {"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5, "compression.type": "zstd"}
    )
    consumer.assign([TopicPartition(topic, p, starts.get(p, 0)) for p in ends])
    expected = sum(end - starts.get(p, 0) for p, end in ends.items())
    seen, started = 0, None
    try:
        while seen < expected:
            for message in consumer.consume(1000, 1.0):
                if message.error():
                    continue
                started = started or time.monotonic()
                event = json.loads(message.value())
                producer.produce(out_topic, json.dumps({"id": event["id"]}).encode(), message.key())
                seen += 1
            producer.poll(0)
        producer.flush(60)
    finally:
        consumer.close()
    seconds = time.monotonic() - (started or time.monotonic())
    return {
        "events": seen,
        "seconds": round(seconds, 3),
        "events_per_s": seen / seconds if seconds > 0 else None,
    }
