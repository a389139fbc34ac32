"""The dedupe horizon on a real worker: at volume, past its end, and after the local state is lost."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from processor_support import (
    Topics,
    Workers,
    calls_of,
    clone_agreement,
    counted,
    demo_agreements,
    expected,
    produce,
    publish,
    read_all,
    summary,
)

from services.core.agreements import Agreement

pytestmark = pytest.mark.integration

LICENSEE = "pebble-6"


def _agreement(**limits: int) -> Agreement:
    pebble = next(a for a in demo_agreements() if a.licensee_id == "pebble")
    return clone_agreement(pebble, LICENSEE, **limits)


def _duplicates(worker: object) -> float:
    return worker.metric("tollgate_processor_events_total", outcome="duplicate")  # type: ignore[attr-defined]


@pytest.mark.timeout(600)  # about 2 minutes on a quiet machine; 212,000 calls through one worker
def test_a_resend_of_calls_older_than_the_licensees_last_200000_is_counted_once_and_raises_no_false_alert(
    broker: str, topics: Topics, tmp_path: Path
) -> None:
    # Issue 12's outage, past the old 10,000-key cap: 212,000 calls in 2.5 days of November, then the
    # gateway re-sends the oldest 12,000 (all inside the 7-day horizon). With the re-sends counted the
    # licensee would be at 224,000 and past its cap of 220,000; counted once it is at 212,000: the
    # warning (176,000) holds, the breach does not.
    agreement = _agreement(calls_per_month=220_000, records_per_month=10**9, calls_per_minute=10**6)
    calls = calls_of(LICENSEE, 212_000, datetime(2026, 11, 20, tzinfo=UTC), timedelta(seconds=1), records=1)
    resent = calls[:12_000]
    want = expected([*calls, *resent], [agreement])
    publish(broker, topics, [agreement])
    produce(broker, topics.input, [*calls, *resent])
    workers = Workers(broker, topics, tmp_path)
    worker = workers.start("solo")
    try:
        workers.wait_drained(timeout=240)
        assert counted(worker) == 212_000
        assert _duplicates(worker) == 12_000
        assert worker.metric("tollgate_usage_calls_total", licensee=LICENSEE) == 212_000
    finally:
        workers.stop_all()
    alerts = read_all(broker, topics.alerts)
    assert {(a["data"]["rule"], a["data"]["subject"]) for a in alerts} == {("volume.warning", "calls")}
    assert summary(alerts, read_all(broker, topics.billable)) == want
    assert want["records"] == {LICENSEE: 212_000}


def test_a_duplicate_past_the_horizon_goes_to_the_dlq_as_late_and_is_not_counted_again(
    broker: str, topics: Topics, tmp_path: Path
) -> None:
    # A one-minute lateness and horizon: `first` again, after the stream moved five minutes on, is past
    # both; `second` again is inside them, so it is a plain duplicate.
    first, second = calls_of(LICENSEE, 2, datetime(2026, 11, 30, tzinfo=UTC), timedelta(minutes=5))
    publish(broker, topics, [_agreement()])
    produce(broker, topics.input, [first, second, first, second])
    small = {"TOLLGATE_PROCESSOR_LATENESS_SECONDS": "60", "TOLLGATE_PROCESSOR_DEDUPE_HORIZON_SECONDS": "60"}
    workers = Workers(broker, topics, tmp_path, env=small)
    worker = workers.start("solo")
    try:
        workers.wait_drained()
        assert (counted(worker), _duplicates(worker)) == (2, 1)
    finally:
        workers.stop_all()
    dead = read_all(broker, topics.dlq)
    assert [d["reason"].split(":")[0] for d in dead] == ["late"]
    assert '"id":"' + first.event_id + '"' in dead[0]["payload"].replace(" ", "")
    billed = read_all(broker, topics.billable)
    assert sum(b["data"]["calls"] for b in billed) == 2  # first and second, once each


def test_state_rebuilt_from_the_changelog_after_the_local_state_is_deleted_knows_every_call_and_count(
    broker: str, topics: Topics, tmp_path: Path
) -> None:
    # A cap of 100 calls: the warning fires at the 80th call and the breach at the 100th. Seventy are
    # counted, the worker's state directory is deleted; after the restart the seventy come again
    # (duplicates, from the changelog) and thirty new calls must cross both levels at exactly those calls.
    agreement = _agreement(calls_per_month=100, records_per_month=10**6, calls_per_minute=10**6)
    calls = calls_of(LICENSEE, 100, datetime(2026, 11, 25, tzinfo=UTC), timedelta(minutes=1))
    publish(broker, topics, [agreement])
    produce(broker, topics.input, calls[:70])
    workers = Workers(broker, topics, tmp_path)
    workers.start("solo")
    workers.wait_drained()
    workers.stop_all()
    assert read_all(broker, topics.alerts) == []
    shutil.rmtree(workers.data_dir("solo"))
    produce(broker, topics.input, [*calls[:70], *calls[70:]])
    rebuilt = workers.start("solo")
    try:
        workers.wait_drained()
        assert (counted(rebuilt), _duplicates(rebuilt)) == (30, 70)
    finally:
        workers.stop_all()
    assert workers.data_dir("solo").is_dir()
    alerts = read_all(broker, topics.alerts)
    fired_at = {a["data"]["rule"]: a["data"]["evidence"]["event_ids"] for a in alerts}
    assert fired_at == {"volume.warning": [calls[79].event_id], "volume.breach": [calls[99].event_id]}
    assert summary(alerts, read_all(broker, topics.billable)) == expected([*calls[:70], *calls], [agreement])
