"""A broker that dies mid-stream and comes back in place changes no result.

The test runs its own single-broker Kafka (the local stack's, restarted in place the way the chaos tier
does it), so killing it cannot disturb the session's broker that other tests share.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from processor_support import (
    Topics,
    Worker,
    counted,
    expected,
    read_all,
    start_mid_stream,
    summary,
    wait_until,
)

from services.stack import LocalStack, StackConfig, StackError
from services.stack.kafka import install_jars

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def private_kafka() -> Iterator[LocalStack]:
    """A Kafka-only local stack of this module's own, removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix="tollgate-broker-restart-"))
    stack = LocalStack(StackConfig(stack_dir=root, parts=("kafka",)))
    try:
        install_jars(stack.config.libs_dir, stack.config.kafka_pom)
        stack.up()
    except StackError as exc:
        stack.down()
        shutil.rmtree(root, ignore_errors=True)
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"the private broker did not start: {exc}")
        pytest.skip(f"the private broker did not start: {exc}")
    try:
        yield stack
    finally:
        with contextlib.suppress(Exception):  # thrown away: no clean shutdown needed
            stack.stop_part("kafka", kill=True)
        stack.down()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def broker(private_kafka: LocalStack) -> str:
    """This module's broker (overrides the session's for the `topics` fixture)."""
    info = private_kafka.info()
    assert info is not None
    return info.kafka_bootstrap


SESSION_SECONDS = 10.0  # the worker's default group session timeout


def _outage(stack: LocalStack, worker: Worker, down_at_least: float = 0.0) -> float:
    """Kill the broker, keep it down `down_at_least` seconds (the fault's length, not when it hits), start
    it again in place; return how many calls the worker had counted when the broker went."""
    stack.stop_part("kafka", kill=True)
    went = time.monotonic()
    try:
        at_the_kill = counted(worker)
        wait_until(lambda: time.monotonic() - went >= down_at_least, down_at_least + 5, "the outage")
    finally:
        stack.start_part("kafka")  # whatever happened, the next test gets its broker back
    return at_the_kill


def test_a_broker_killed_mid_stream_and_restarted_in_place_gives_the_undisturbed_result(
    private_kafka: LocalStack, broker: str, topics: Topics, tmp_path: Path
) -> None:
    run = start_mid_stream(broker, topics, tmp_path)
    calls, workers, worker = run.calls, run.workers, run.worker
    try:
        at_the_kill = _outage(private_kafka, worker)
        # A short outage: the worker rides it out, or restarts itself in place (see the next test).
        workers.drain_supervised(worker, "solo")
    finally:
        workers.stop_all()
    assert at_the_kill < len(calls), "the broker went down after the worker had finished"
    want = expected(calls, run.agreements)
    # A worker that restarted in place has a new transactional.id, so nothing fences the transaction
    # its old producer had open at the outage: it holds back read_committed readers of the outputs
    # until the coordinator times it out and aborts it (its records are re-produced by the restart).
    with contextlib.suppress(AssertionError):  # a timeout: the assertion below shows the difference
        wait_until(lambda: _result(broker, topics) == want, 120, "the outputs to be readable", interval=2)
    assert _result(broker, topics) == want


def _result(broker: str, topics: Topics) -> dict[str, object]:
    return summary(read_all(broker, topics.alerts), read_all(broker, topics.billable))


def test_a_worker_rides_out_a_broker_restart_without_exiting(
    private_kafka: LocalStack, broker: str, topics: Topics, tmp_path: Path
) -> None:
    run = start_mid_stream(broker, topics, tmp_path)
    calls, workers, worker = run.calls, run.workers, run.worker
    want = expected(calls, run.agreements)
    try:
        # Longer than the session timeout: the group forgets the worker, its commit fails, and the
        # worker starts afresh in the same process (services/processor/restart.py).
        at_the_kill = _outage(private_kafka, worker, down_at_least=SESSION_SECONDS + 2)

        def done() -> bool:
            assert worker.process.poll() is None, worker.log()[-2000:]
            return _result(broker, topics) == want

        wait_until(done, 180, "the same worker to finish the stream", interval=2.0)
    finally:
        workers.stop_all()
    assert at_the_kill < len(calls), "the broker went down after the worker had finished"
    assert "restart 1 in" in worker.log()
