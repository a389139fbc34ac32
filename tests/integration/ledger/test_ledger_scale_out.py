"""Two ledger instances split the billable partitions: exactly once, through a kill -9 and past a zombie."""

from __future__ import annotations

import logging
import signal
import threading
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from ledger_support import LedgerDb, produce, serve_ledger, settings_for, synthetic_billables, wait_for

from services.core import metric_names
from services.core.events import UsageRecorded
from services.ledger.adapters.kafka.consumer import LedgerConsumer
from services.ledger.adapters.postgres.partitions import MonthPartitions
from services.ledger.settings import LedgerSettings

pytestmark = pytest.mark.integration
log = logging.getLogger(__name__)


def many_licensees(count: int, licensees: int = 12) -> list[UsageRecorded]:
    """`count` distinct deltas of `licensees` licensees, interleaved, so they key onto every partition."""
    each = count // licensees
    streams = [synthetic_billables(each, f"lic-{i}", i * each) for i in range(licensees)]
    return [usage for group in zip(*streams, strict=True) for usage in group]


def owners(db: LedgerDb, topic: str) -> dict[str, list[int]]:
    """Each claimant's partitions of `topic`, from `consumer_offsets`."""
    found: dict[str, list[int]] = {}
    query = "SELECT owner, kafka_partition FROM consumer_offsets WHERE topic = %s ORDER BY 2"
    for owner, partition in db.rows(query, (topic,)):
        found.setdefault(owner, []).append(partition)
    return found


def stored_total(db: LedgerDb, topic: str) -> int:
    """The stored next offsets of `topic`, summed: how many records the ledger has committed."""
    query = "SELECT coalesce(sum(next_offset), 0) FROM consumer_offsets WHERE topic = %s"
    return int(db.scalar(query, (topic,)))


def group_settings(bootstrap: str, db: LedgerDb, topics: tuple[str, str]) -> LedgerSettings:
    """Settings of one fresh consumer group: 500-row batches, the broker's shortest session timeout."""
    group = f"g-{uuid.uuid4().hex[:6]}"
    return settings_for(bootstrap, db, topics, consumer_group=group, batch_max=500, session_timeout_ms=6_000)


def written(consumer: LedgerConsumer) -> float:
    """The usage rows one consumer committed, from its own metrics."""
    found = consumer.metrics.registry.get_sample_value(
        f"{metric_names.LEDGER_ENTRIES_WRITTEN}_total", {"kind": "usage"}
    )
    return found or 0.0


def split_between(db: LedgerDb, topic: str, names: Sequence[object]) -> bool:
    """Whether all 6 partitions are claimed, each instance (owner name, or a pid in one) holding some."""
    found = owners(db, topic)
    mine = [o for o in found if any(o == name or f":{name}:" in o for name in names)]
    return len(mine) == len(names) == len(found) and sum(map(len, found.values())) == 6


def assert_exactly_once(db: LedgerDb, usages: Sequence[UsageRecorded]) -> None:
    """Every expected delta stored once: no gap, no duplicate usage_id, the calls summed exactly."""
    query = "SELECT count(*), sum(calls), count(DISTINCT usage_id) FROM usage_entries"
    count, calls, distinct = db.rows(query)[0]
    assert (count, calls, distinct) == (len(usages), sum(u.calls for u in usages), len(usages))
    assert {u.usage_id for u in usages} == {r[0] for r in db.rows("SELECT usage_id FROM usage_entries")}


def test_two_instances_split_the_billable_partitions_and_store_every_delta_exactly_once(
    ledger_db: LedgerDb, kafka_bootstrap: str, billable_topics: tuple[str, str]
) -> None:
    usages = many_licensees(12_000)
    settings = group_settings(kafka_bootstrap, ledger_db, billable_topics)
    consumers = [LedgerConsumer(settings), LedgerConsumer(settings)]
    stop = threading.Event()
    threads = [threading.Thread(target=c.run, args=(stop,)) for c in consumers]
    for thread in threads:
        thread.start()
    try:
        names = [c.ownership.owner for c in consumers]
        wait_for(lambda: split_between(ledger_db, billable_topics[0], names), 60, "both to own partitions")
        produced = produce(kafka_bootstrap, billable_topics[0], usages + usages[:1_000])  # some twice
        done = lambda: stored_total(ledger_db, billable_topics[0]) == produced  # noqa: E731
        wait_for(done, 120, "both instances to finish")
        split = owners(ledger_db, billable_topics[0])
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert sorted(split) == sorted(c.ownership.owner for c in consumers), split
    assert sorted(p for parts in split.values() for p in parts) == list(range(6))
    assert all(written(c) > 0 for c in consumers), "one instance wrote nothing"
    assert_exactly_once(ledger_db, usages)


def produce_in_chunks(bootstrap: str, topic: str, usages: Sequence[UsageRecorded], chunk: int) -> None:
    """A live stream: `chunk` deltas at a time with a pause between."""
    for start in range(0, len(usages), chunk):
        produce(bootstrap, topic, usages[start : start + chunk])
        time.sleep(0.3)


@pytest.mark.slow
def test_kill_9_of_one_of_two_instances_moves_its_partitions_to_the_survivor_with_no_gap_and_no_double(
    ledger_db: LedgerDb, kafka_bootstrap: str, billable_topics: tuple[str, str], tmp_path: Path
) -> None:
    topic = billable_topics[0]
    env = {"TOLLGATE_LEDGER_CONSUMER_GROUP": f"g-{uuid.uuid4().hex[:6]}",
           "TOLLGATE_LEDGER_SESSION_TIMEOUT_MS": "6000"}  # fmt: skip
    usages = many_licensees(40_000)
    stream = usages + usages[:4_000]  # a re-sent stretch, read by whichever instance owns its partition
    doomed = serve_ledger(ledger_db, kafka_bootstrap, billable_topics, tmp_path, "doomed.log", **env)
    survivor = serve_ledger(ledger_db, kafka_bootstrap, billable_topics, tmp_path, "survivor.log", **env)
    producer = threading.Thread(target=produce_in_chunks, args=(kafka_bootstrap, topic, stream, 2_000))
    try:
        pids = (doomed.pid, survivor.pid)
        wait_for(lambda: split_between(ledger_db, topic, pids), 60, "both instances to own partitions")
        producer.start()
        wait_for(lambda: stored_total(ledger_db, topic) >= 8_000, 60, "both instances writing")
        doomed_parts = next(p for o, p in owners(ledger_db, topic).items() if f":{doomed.pid}:" in o)
        moved = "SELECT sum(next_offset) FROM consumer_offsets WHERE topic = %s AND kafka_partition = ANY(%s)"
        assert ledger_db.scalar(moved, (topic, doomed_parts)) > 0, "the doomed instance wrote nothing"
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(timeout=10)
        at_kill = stored_total(ledger_db, topic)
        producer.join(timeout=120)
        assert at_kill < len(stream), "everything was stored before the kill; the test proves nothing"
        wait_for(lambda: stored_total(ledger_db, topic) == len(stream), 120, "the survivor to catch up")
        after = owners(ledger_db, topic)
    finally:
        doomed.kill()
        survivor.send_signal(signal.SIGTERM)
        assert survivor.wait(timeout=30) == 0, (tmp_path / "survivor.log").read_text()[-3000:]
    assert list(after) == [o for o in after if f":{survivor.pid}:" in o] and len(after) == 1, after
    assert sorted(after[next(iter(after))]) == list(range(6))
    log.info("killed with %d of %d records stored; partitions %s moved", at_kill, len(stream), doomed_parts)
    assert_exactly_once(ledger_db, usages)


class StallingConsumer(LedgerConsumer):
    """A consumer that stalls once between reading a batch and writing it (a GC pause, a frozen VM)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stalled = threading.Event()
        self.release = threading.Event()

    def _before_write(self, rows: Sequence[Any]) -> None:
        if rows and not self.stalled.is_set():
            self.stalled.set()
            self.release.wait(120)
        super()._before_write(rows)


def test_a_stale_instance_that_lost_its_partitions_has_its_batch_refused_after_the_new_owner_wrote(
    ledger_db: LedgerDb,
    kafka_bootstrap: str,
    billable_topics: tuple[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="services.ledger.adapters.kafka.consumer_loop")
    usages = many_licensees(3_000)
    settings = group_settings(kafka_bootstrap, ledger_db, billable_topics)
    zombie, owner = StallingConsumer(settings), LedgerConsumer(settings)
    stop = threading.Event()
    threads = [threading.Thread(target=c.run, args=(stop,)) for c in (zombie, owner)]
    produce(kafka_bootstrap, billable_topics[0], usages)
    offsets = "SELECT kafka_partition, next_offset FROM consumer_offsets ORDER BY kafka_partition"
    threads[0].start()
    try:
        assert zombie.stalled.wait(60), "the first instance never read a batch"
        threads[1].start()  # the group drops the silent zombie after its session timeout; all go to the owner
        done = lambda: stored_total(ledger_db, billable_topics[0]) == len(usages)  # noqa: E731
        wait_for(done, 90, "the new owner to write everything")
        claimed = owners(ledger_db, billable_topics[0])
        before = ledger_db.snapshot(), ledger_db.rows(offsets)
        zombie.release.set()
        wait_for(lambda: "refused" in caplog.text, 30, "the zombie's batch to be refused")
        after = ledger_db.snapshot(), ledger_db.rows(offsets)
    finally:
        zombie.release.set()
        stop.set()
        for thread in threads:
            if thread.ident:
                thread.join(timeout=30)
    assert list(claimed) == [owner.ownership.owner], claimed
    assert after == before, "the zombie's batch changed the ledger"
    assert written(zombie) == 0
    assert_exactly_once(ledger_db, usages)


def test_the_service_role_can_raise_a_partitions_epoch_but_never_lower_it(ledger_db: LedgerDb) -> None:
    with psycopg.connect(ledger_db.app_url, autocommit=True) as conn:
        columns = "consumer_group, topic, kafka_partition, next_offset, epoch"
        conn.execute(f"INSERT INTO consumer_offsets ({columns}) VALUES ('g', 't', 0, 5, 1)")  # noqa: S608
        conn.execute("UPDATE consumer_offsets SET epoch = 2 WHERE topic = 't'")
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="may not lower the epoch"):
            conn.execute("UPDATE consumer_offsets SET epoch = 1 WHERE topic = 't'")
    assert ledger_db.scalar("SELECT epoch FROM consumer_offsets WHERE topic = 't'") == 2


def test_two_instances_making_the_same_new_months_at_once_both_go_on(ledger_db: LedgerDb) -> None:
    months = [datetime(2031, month, 1, tzinfo=UTC) for month in range(1, 13)]
    barrier = threading.Barrier(2)
    failures: list[BaseException] = []

    def make_all() -> None:
        with psycopg.connect(ledger_db.app_url, autocommit=True) as conn:
            for month in months:
                barrier.wait(10)
                try:
                    MonthPartitions().ensure(conn, [month])
                except psycopg.Error as exc:
                    failures.append(exc)

    threads = [threading.Thread(target=make_all) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failures == []
    made = "SELECT count(*) FROM pg_inherits WHERE inhparent = 'usage_entries'::regclass"
    assert ledger_db.scalar(made) >= len(months)
