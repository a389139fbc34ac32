"""Exactly once in effect on a real broker: replays, kill -9 and a rebalance change no result."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from processor_support import (
    Topics,
    Workers,
    expected_demo_alert_ids,
    produce,
    produce_in_transactions,
    publish_demo_agreements,
    read_all,
    summary,
    wait_until,
)

from services.demo.scenario import demo_calls

EXPECTED_RECORDS = {"omnisoft": 81_000, "pebble": 3_000, "oldco": 250}


def _result(broker: str, topics: Topics) -> dict[str, object]:
    return summary(read_all(broker, topics.alerts), read_all(broker, topics.billable))


def _assert_undisturbed(result: dict[str, object]) -> None:
    assert result["alert_ids"] == expected_demo_alert_ids()
    assert len(result["usage_ids"]) == 3590  # type: ignore[arg-type]
    assert result["records"] == EXPECTED_RECORDS


def test_sending_the_same_events_twice_changes_no_count_and_raises_no_new_alert(
    broker: str, topics: Topics, tmp_path: Path
) -> None:
    publish_demo_agreements(broker, topics)
    workers = Workers(broker, topics, tmp_path)
    worker = workers.start("solo")
    try:
        produce(broker, topics.input, demo_calls())
        workers.wait_drained()
        first = _result(broker, topics)
        alerts_before = len(read_all(broker, topics.alerts))
        produce(broker, topics.input, demo_calls())
        workers.wait_drained()
        # Within the dedupe horizon the second copy is a duplicate; further behind the stream's event time
        # than the lateness it is late (to the DLQ). Either way nothing is counted again.
        duplicate = worker.metric("tollgate_processor_events_total", outcome="duplicate")
        late = worker.metric("tollgate_processor_events_total", outcome="late")
        assert duplicate > 0 and duplicate + late == 3590
        assert worker.metric("tollgate_processor_events_total", outcome="counted") == 3590
        assert worker.metric("tollgate_usage_calls_total", licensee="omnisoft") == 3240
        assert worker.metric("tollgate_usage_records_total", licensee="omnisoft") == 81_000
    finally:
        workers.stop_all()
    assert _result(broker, topics) == first
    assert len(read_all(broker, topics.alerts)) == alerts_before  # duplicates re-emit usage, never alerts
    _assert_undisturbed(first)


def test_a_worker_killed_mid_stream_and_restarted_gives_the_undisturbed_result(
    broker: str, topics: Topics, tmp_path: Path
) -> None:
    publish_demo_agreements(broker, topics)
    produce(broker, topics.input, demo_calls())
    workers = Workers(broker, topics, tmp_path)
    victim = workers.start("victim")
    try:
        wait_until(
            lambda: victim.metric("tollgate_processor_events_total", outcome="counted") >= 1200,
            120,
            "the worker to be mid-stream",
            interval=0.2,
        )
        victim.kill()
        workers.start("survivor")
        workers.wait_drained()
    finally:
        workers.stop_all()
    _assert_undisturbed(_result(broker, topics))


def test_when_one_of_two_workers_stops_the_other_takes_its_partitions_with_counts_intact(
    broker: str, topics: Topics, tmp_path: Path
) -> None:
    publish_demo_agreements(broker, topics)
    calls = demo_calls()
    half = len(calls) // 2
    workers = Workers(broker, topics, tmp_path)
    first, second = workers.start("first"), workers.start("second")
    try:
        first.wait_ready()
        second.wait_ready()
        produce(broker, topics.input, calls[:half])
        workers.wait_drained()
        owner = first if first.metric("tollgate_usage_calls_total", licensee="omnisoft") else second
        other = second if owner is first else first
        owner.stop()
        produce(broker, topics.input, calls[half:])
        workers.wait_drained()
        assert other.metric("tollgate_usage_calls_total", licensee="omnisoft") > 0
    finally:
        workers.stop_all()
    _assert_undisturbed(_result(broker, topics))


def test_calls_in_committed_transactions_count_exactly_and_calls_in_aborted_ones_not_at_all(
    broker: str, topics: Topics, tmp_path: Path
) -> None:
    publish_demo_agreements(broker, topics)
    calls = demo_calls()
    pebble = next(c for c in calls if c.licensee_id == "pebble")
    aborted = [replace(pebble, event_id=f"aborted-{n}") for n in range(3)]
    produce_in_transactions(broker, topics.input, calls, per_transaction=397, aborted=aborted)
    Workers(broker, topics, tmp_path).run_solo()
    _assert_undisturbed(_result(broker, topics))
