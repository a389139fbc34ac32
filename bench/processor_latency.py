"""Event-to-alert latency on a running worker under a background load it sustains (lag flat).

Probe calls, each for a new licensee without an agreement, raise one `agreement.missing` alert each.
Latency = the alert record's CreateTime (the worker stamps it when it hands the alert to its producer)
minus the probe's send time; `delivered_*` is when a read_committed consumer of the alerts topic got
it: the worker's outputs are visible only once its checkpoint's transaction commits
(TOLLGATE_PROCESSOR_COMMIT_INTERVAL_SECONDS). An attempt is valid only if the group's lag stayed flat.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from dataclasses import replace
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition as AioTopicPartition
from kafka import KafkaProducer

from bench.e2e_bench import linear_slope
from bench.processor_maths import lag_verdict, nearest_rank
from bench.processor_worker import GroupWatch, Worker
from bench.processor_workload import PARTITIONS, call
from services.core.events import dumps, loads

PROBE_PREFIX, PROBE_RULE = "unknown-", "agreement.missing"
LAG_SAMPLE_S = 0.25
# The probes start once the lag is at most this many records, or this many seconds of the load.
SETTLED_RECORDS, SETTLED_SECONDS = 50, 0.25


async def _listen(
    topic: str,
    bootstrap: str,
    arrivals: dict[str, tuple[float, float]],
    listening: threading.Event,
    stop: threading.Event,
) -> None:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        fetch_max_wait_ms=20,
        isolation_level="read_committed",
    )
    await consumer.start()
    try:
        partitions = [AioTopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        for tp in partitions:
            await consumer.position(tp)
        listening.set()
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=100)
            now = time.time()
            for m in (m for batch in batches.values() for m in batch):
                data = loads(m.value)["data"]
                if data["rule"] == PROBE_RULE and data["licensee_id"].startswith(PROBE_PREFIX):
                    arrivals.setdefault(data["licensee_id"], (m.timestamp / 1000, now))
    finally:
        await consumer.stop()


def _background(
    bootstrap: str,
    topic: str,
    licensees: int,
    at: float,
    rate: float,
    stop: threading.Event,
    stats: dict[str, float],
) -> None:
    """Calls of the bench licensees at `rate` per second until `stop`."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5, batch_size=256 * 1024)
    tag, started, sent = uuid.uuid4().hex[:6], time.monotonic(), 0
    while not stop.is_set() and rate > 0:
        due = int((time.monotonic() - started) * rate)
        for n in range(sent, due):
            c = call(f"bg-{tag}-{n}", n % licensees, at)
            producer.send(topic, key=c.licensee_id.encode(), value=dumps(c.to_cloudevent()))
        sent = max(sent, due)
        time.sleep(0.005)
    stats.update(seconds=time.monotonic() - started, sent=sent)
    producer.flush()
    producer.close()


def _probe(bootstrap: str, topic: str, at: float, rate: float, seconds: float) -> dict[str, float]:
    """Send `rate` probes a second for `seconds`; licensee -> send time."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
    sent: dict[str, float] = {}
    for i in range(int(rate * seconds)):
        lic = f"{PROBE_PREFIX}{uuid.uuid4().hex[:8]}"
        value = dumps(replace(call(f"lat-{i}", 0, at, "bench-latency"), licensee_id=lic).to_cloudevent())
        now = time.time()
        sent[lic] = now
        producer.send(topic, key=lic.encode(), value=value, timestamp_ms=int(now * 1000))
        producer.flush()
        time.sleep(max(0.0, now + 1 / rate - time.time()))
    producer.close()
    return sent


def _settled(watch: GroupWatch, records: float, limit: float = 30.0) -> None:
    """Wait (at most `limit` s) until the lag is at most `records`: a backlog left by what ran before
    (a drain's last checkpoints, the load's first seconds) would be measured as latency and make the
    lag shrink over the window, which voids the attempt."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and watch.lag() > records:
        time.sleep(LAG_SAMPLE_S)


def _drained_after(watch: GroupWatch, limit: float = 60.0) -> float | None:
    stopped = time.monotonic()
    while time.monotonic() - stopped < limit:
        if watch.lag() == 0:
            return time.monotonic() - stopped
        time.sleep(0.05)
    return None


def measure(
    bootstrap: str,
    names: dict[str, str],
    worker: Worker,
    licensees: int,
    at: float,
    load_rate: float,
    probe_rate: float = 20.0,
    seconds: float = 20.0,
) -> dict[str, Any]:
    """Probes at `probe_rate` while `load_rate` background calls flow; latency and the lag verdict."""
    arrivals: dict[str, tuple[float, float]] = {}
    listening, stop_listen, stop_load, stop_sample = (threading.Event() for _ in range(4))
    lags: list[tuple[float, int]] = []
    sampler = GroupWatch(bootstrap, worker.group, names["INPUT"])

    def sample() -> None:
        while not stop_sample.is_set():
            lags.append((time.monotonic(), sampler.lag()))
            stop_sample.wait(LAG_SAMPLE_S)

    stats: dict[str, float] = {}
    listener = threading.Thread(
        target=lambda: asyncio.run(_listen(names["ALERTS"], bootstrap, arrivals, listening, stop_listen)),
        daemon=True,
    )
    listener.start()
    listening.wait(30)
    loader = threading.Thread(
        target=_background,
        args=(bootstrap, names["INPUT"], licensees, at, load_rate, stop_load, stats),
        daemon=True,
    )
    sampler_thread = threading.Thread(target=sample, daemon=True)
    loader.start()
    sampler_thread.start()
    time.sleep(3.0)  # the background settles before the first probe
    _settled(sampler, max(SETTLED_RECORDS, load_rate * SETTLED_SECONDS))
    window_start, cpu_start = time.monotonic(), worker.cpu_seconds()
    sent = _probe(bootstrap, names["INPUT"], at, probe_rate, seconds)
    window_end, cpu_end = time.monotonic(), worker.cpu_seconds()
    stop_load.set()
    loader.join(30)
    drained = _drained_after(sampler)
    stop_sample.set()
    sampler_thread.join(10)
    deadline = time.monotonic() + 30
    while len(arrivals) < len(sent) and time.monotonic() < deadline:
        time.sleep(0.2)
    stop_listen.set()
    listener.join(5)
    sampler.close()
    window = [(t - window_start, lag) for t, lag in lags if window_start <= t <= window_end]
    return _result(
        sent,
        arrivals,
        window,
        stats,
        load_rate,
        probe_rate,
        drained,
        (cpu_start, cpu_end, window_end - window_start),
    )


def _result(
    sent: dict[str, float],
    arrivals: dict[str, tuple[float, float]],
    window: list[tuple[float, int]],
    stats: dict[str, float],
    load_rate: float,
    probe_rate: float,
    drained: float | None,
    cpu: tuple[float | None, float | None, float],
) -> dict[str, Any]:
    emitted = [arrivals[k][0] - at for k, at in sent.items() if k in arrivals]
    delivered = [arrivals[k][1] - at for k, at in sent.items() if k in arrivals]
    achieved = stats.get("sent", 0) / stats["seconds"] if stats.get("seconds") else 0.0
    verdict = lag_verdict(
        window, load_rate + probe_rate, drained, achieved, load_rate, len(emitted), len(sent)
    )
    start, end, span = cpu
    verdict["worker_cpu_share"] = (
        round((end - start) / span, 2) if start is not None and end is not None and span else None
    )
    verdict["lag_slope_check"] = round(linear_slope([t for t, _ in window], [n for _, n in window]), 1)

    def ms(values: list[float], q: float) -> float | None:
        value = nearest_rank(values, q)
        return None if value is None else round(value, 4)

    return {
        "p50_s": ms(emitted, 0.5),
        "p99_s": ms(emitted, 0.99),
        "max_s": ms(emitted, 1.0),
        "delivered_p50_s": ms(delivered, 0.5),
        "delivered_p99_s": ms(delivered, 0.99),
        "alerts": len(emitted),
        "sent": len(sent),
        "probe_per_s": probe_rate,
        "background_target_per_s": round(load_rate, 1),
        "background_achieved_per_s": round(achieved, 1),
        "lag": verdict,
        "valid": verdict["valid"],
        "invalid_because": verdict["invalid_because"],
    }
