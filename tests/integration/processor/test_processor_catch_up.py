"""A worker behind its input commits longer checkpoints until it has caught up, and counts exactly."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from processor_support import Topics, Workers, calls_of, counted, produce, wait_until

pytestmark = pytest.mark.integration

INTERVAL = "tollgate_processor_checkpoint_interval_seconds"


@pytest.mark.timeout(300)
def test_a_worker_behind_its_input_checkpoints_every_second_then_every_tenth_once_caught_up(
    broker: str, topics: Topics, tmp_path: Path
) -> None:
    start = datetime.now(UTC) - timedelta(days=1)
    backlog = calls_of("pebble", 40_000, start, timedelta(seconds=1), records=1)
    produce(broker, topics.input, backlog)
    time.sleep(3)  # every record of the backlog is now more than the 2 s catch-up lag behind the clock
    workers = Workers(broker, topics, tmp_path)
    worker = workers.start("solo")
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
        fresh = calls_of("pebble", 1, datetime.now(UTC) - timedelta(seconds=1), timedelta(0), first=40_000)
        produce(broker, topics.input, fresh)
        wait_until(lambda: counted(worker) == 40_001, 60, "the fresh call to be counted", interval=0.1)
        # The checkpoint that counted the fresh call found the worker caught up: the next one is short.
        wait_until(lambda: worker.metric(INTERVAL) == 0.1, 10, "checkpoints back to 0.1 s", interval=0.1)
        assert "checkpoints every 1.00 s" in worker.log() and "checkpoints every 0.10 s" in worker.log()
    finally:
        stop.set()
        watcher.join(timeout=5)
        workers.stop_all()
