"""Exactly once in effect on a real broker: replays, kill -9, rebalances and transactional input change no
result. Each run is compared with the pure domain's answer for the same calls (alert ids, usage ids and
records per licensee), which an undisturbed run gives (tests/integration/processor/test_processor_demo.py)."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from processor_support import (
    Topics,
    Workers,
    calls_of,
    clone_agreement,
    counted,
    demo_agreements,
    expected,
    expected_demo_alert_ids,
    produce,
    produce_in_transactions,
    publish,
    publish_demo_agreements,
    read_all,
    start_mid_stream,
    summary,
    wait_counted,
    wait_until,
)

from services.core.agreements import Agreement
from services.core.events import ApiCall
from services.demo.scenario import demo_calls

EXPECTED_RECORDS = {
    "omnisoft": 81_000, "pebble": 3_000, "oldco": 250, "halcyon-news": 3_000, "halcyon-tv": 3_000,
}  # fmt: skip


def _result(broker: str, topics: Topics) -> dict[str, object]:
    return summary(read_all(broker, topics.alerts), read_all(broker, topics.billable))


def _assert_undisturbed(result: dict[str, object]) -> None:
    assert result["alert_ids"] == expected_demo_alert_ids()
    assert sum(calls for calls, _ in result["billed"].values()) == 4190  # type: ignore[attr-defined]
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
        assert duplicate > 0 and duplicate + late == 4190
        assert worker.metric("tollgate_processor_events_total", outcome="counted") == 4190
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
    run = start_mid_stream(broker, topics, tmp_path, "victim")
    try:
        run.worker.kill()
        at_the_kill = counted(run.worker)
        survivor = run.workers.start("survivor")
        # See the next test: the survivor may exit while the victim's transaction is open; its
        # supervisor starts it again.
        run.workers.drain_supervised(survivor, "survivor")
    finally:
        run.workers.stop_all()
    assert at_the_kill < len(run.calls), "the kill came after the worker had finished"
    want = expected(run.calls, run.agreements)
    # The victim's open transaction holds back read_committed readers of the outputs until the broker
    # aborts it (transaction.timeout.ms: nothing fences it, its transactional.id dies with it).
    went = time.monotonic()
    wait_until(lambda: _result(broker, topics) == want, 120, "the outputs to be readable", interval=2)
    held_back = time.monotonic() - went
    print(f"read_committed readers held back {held_back:.0f}s after the drain")
    assert _result(broker, topics) == want


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


# Clones of pebble whose keys land on the partitions the demo licensees leave empty (murmur2, 6
# partitions: pebble-6 on 1, pebble-3 on 2, pebble-7 on 4, pebble-5 on 5), so every worker of a
# rebalanced group has calls to take over.
SPREAD = ("pebble-3", "pebble-5", "pebble-6", "pebble-7")


def _spread_calls() -> list[ApiCall]:
    """The demo calls plus 150 calls of each clone, all in October 2026, in event-time order."""
    start = datetime(2026, 10, 1, 0, 3, tzinfo=UTC)
    extra = [c for name in SPREAD for c in calls_of(name, 150, start, timedelta(hours=4, minutes=57))]
    return sorted([*demo_calls(), *extra], key=lambda c: (c.time, c.source, c.event_id))


def _spread_agreements() -> list[Agreement]:
    pebble = next(a for a in demo_agreements() if a.licensee_id == "pebble")
    # A cap of 120 calls: each clone crosses its warning (96) and breach (120) levels.
    return [*demo_agreements(), *(clone_agreement(pebble, name, calls_per_month=120) for name in SPREAD)]


def test_when_two_more_workers_join_one_mid_stream_the_three_share_the_partitions_with_counts_intact(
    broker: str, topics: Topics, tmp_path: Path
) -> None:
    calls, agreements = _spread_calls(), _spread_agreements()
    want = expected(calls, agreements)
    publish(broker, topics, agreements)
    half = len(calls) // 2
    produce(broker, topics.input, calls[:half])
    workers = Workers(broker, topics, tmp_path)
    first = workers.start("first")
    try:
        wait_counted(first, half)
        joined = [workers.start("second"), workers.start("third")]
        workers.wait_members(3)  # the first worker handed over partitions, with their state
        produce(broker, topics.input, calls[half:])
        workers.wait_drained()
        totals = [counted(w) for w in (first, *joined)]
        # A licensee's usage ratio is shown by the worker that owns it, not also by its old owner.
        shown = {
            a.licensee_id: [
                w.exports("tollgate_usage_ratio", licensee=a.licensee_id, limit="calls_per_month")
                for w in (first, *joined)
            ]
            for a in agreements
        }
    finally:
        workers.stop_all()
    assert {lic: sum(seen) for lic, seen in shown.items() if sum(seen) > 1} == {}
    assert sum(totals[1:]) > 0, f"the new workers took no partition with calls: {totals}"
    assert sum(totals) == len(calls), totals  # nothing counted twice across the hand-overs
    assert _result(broker, topics) == want
