"""A worker behind its input commits longer checkpoints until it has caught up, and counts exactly, a
kill -9 inside a long checkpoint included."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from confluent_kafka import Producer
from processor_support import (
    Topics,
    Workers,
    calls_of,
    counted,
    expected,
    mid_stream_run,
    produce,
    publish,
    read_all,
    summary,
    wait_until,
)

from services.core.events import ApiCall, dumps

pytestmark = pytest.mark.integration

INTERVAL = "tollgate_processor_checkpoint_interval_seconds"


def _produce_stamped(broker: str, topic: str, calls: list[ApiCall], kafka_time_ms: int) -> None:
    """Produce `calls` keyed by licensee with this Kafka timestamp (as if they had queued since then)."""
    producer = Producer({"bootstrap.servers": broker, "acks": "all", "partitioner": "murmur2_random"})
    for call in calls:
        key, value = call.licensee_id.encode(), dumps(call.to_cloudevent())
        while True:
            try:
                producer.produce(topic, key=key, value=value, timestamp=kafka_time_ms)
                break
            except BufferError:
                producer.poll(0.1)
    assert producer.flush(60) == 0


@pytest.mark.timeout(300)
def test_a_worker_behind_its_input_checkpoints_every_second_then_every_twentieth_once_caught_up(
    broker: str, topics: Topics, tmp_path: Path
) -> None:
    start = datetime.now(UTC) - timedelta(days=1)
    backlog = calls_of("pebble", 40_000, start, timedelta(seconds=1), records=1)
    # Queued for a minute: even the last record of the backlog is far behind the clock when handled.
    _produce_stamped(broker, topics.input, backlog, int((time.time() - 60) * 1000))
    workers = Workers(broker, topics, tmp_path)
    worker = workers.start("solo", {"TOLLGATE_PROCESSOR_CATCH_UP_COMMIT_INTERVAL_SECONDS": "1.0"})
    seen: set[float] = set()
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            seen.add(worker.metric(INTERVAL))
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        workers.wait_drained(timeout=240)
        assert 1.0 in seen, f"the backlog was drained without a catch-up checkpoint: {sorted(seen)}"
        # The backlog ended in silence: the long interval lasts one more (empty) checkpoint at most.
        wait_until(lambda: worker.metric(INTERVAL) == 0.05, 5, "checkpoints back to 0.05 s", interval=0.1)
        fresh = calls_of("pebble", 1, datetime.now(UTC) - timedelta(seconds=1), timedelta(0), first=40_000)
        produce(broker, topics.input, fresh)
        wait_until(lambda: counted(worker) == 40_001, 60, "the fresh call to be counted", interval=0.1)
        assert worker.metric(INTERVAL) == 0.05  # a kept-up worker's commit asks for no catch-up
        assert "checkpoints every 1.00 s" in worker.log() and "checkpoints every 0.05 s" in worker.log()
    finally:
        stop.set()
        watcher.join(timeout=5)
        workers.stop_all()


@pytest.mark.timeout(300)
def test_a_worker_killed_inside_a_one_second_catch_up_checkpoint_and_restarted_gives_the_undisturbed_result(
    broker: str, topics: Topics, tmp_path: Path
) -> None:
    # Enough calls that work remains after the first committed 1 s checkpoint, even on a fast machine.
    calls, agreements = mid_stream_run(bulk=40_000)
    publish(broker, topics, agreements)
    _produce_stamped(broker, topics.input, calls, int((time.time() - 60) * 1000))
    # Every worker of the set, the restarted one too, catches up with 1 s checkpoints.
    catch_up = {"TOLLGATE_PROCESSOR_CATCH_UP_COMMIT_INTERVAL_SECONDS": "1.0"}
    workers = Workers(broker, topics, tmp_path, env=catch_up)
    victim = workers.start("victim")
    try:
        # `counted` moves only when a checkpoint commits: past 1,500 and short of all, the worker is
        # inside a 1 s checkpoint whose records it has handled but not committed.
        wait_until(
            lambda: (victim.metric(INTERVAL) == 1.0 and counted(victim) >= 1500)
            or victim.process.poll() is not None,
            120,
            "a committed catch-up checkpoint with 1,500 calls counted",
            interval=0.05,
        )
        committed_at_the_kill = counted(victim)
        victim.kill()
        assert 1500 <= committed_at_the_kill < len(calls), victim.log()[-3000:]
        # The survivor may exit while the victim's transaction is open; its supervisor starts it again.
        workers.drain_supervised(workers.start("survivor"), "survivor")
    finally:
        workers.stop_all()
    assert "checkpoints every 1.00 s" in victim.log()
    want = expected(calls, agreements)

    def result() -> dict[str, object]:
        return summary(read_all(broker, topics.alerts), read_all(broker, topics.billable))

    # read_committed readers wait until the broker aborts the victim's open transaction.
    wait_until(lambda: result() == want, 120, "the outputs to equal the undisturbed run's", interval=2)
    assert result() == want
