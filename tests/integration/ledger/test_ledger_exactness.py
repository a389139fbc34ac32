"""Exactly once in effect: dead letters, kill -9 mid-batch, and PostgreSQL stopped for a while."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
from kafka import KafkaConsumer, TopicPartition
from ledger_support import (
    LedgerDb,
    ledger_schema,
    produce,
    serve_ledger,
    settings_for,
    synthetic_billables,
    wait_for,
)

from services.ledger.adapters.kafka.consumer import LedgerConsumer
from services.stack import postgres as stack_postgres
from services.stack.config import StackConfig
from services.stack.ports import free_port

pytestmark = pytest.mark.integration


def offsets_total(db: LedgerDb, topic: str) -> int:
    """The stored next offsets of `topic` summed (the service also reads the alerts and agreements topics)."""
    query = "SELECT coalesce(sum(next_offset), 0) FROM consumer_offsets WHERE topic = %s"
    return int(db.scalar(query, (topic,)))


def test_a_bad_message_goes_to_the_dead_letter_table_and_topic_and_the_rest_is_recorded(
    ledger_db: LedgerDb, kafka_bootstrap: str, billable_topics: tuple[str, str]
) -> None:
    good = synthetic_billables(100)
    bad = [b"{not json", orjson.dumps({**good[0].to_cloudevent(), "data": {"usage_id": "x"}})]
    produce(kafka_bootstrap, billable_topics[0], good, raw=bad)
    consumer = LedgerConsumer(settings_for(kafka_bootstrap, ledger_db, billable_topics))
    consumer.drain(timeout=60)
    consumer.close()
    assert ledger_db.scalar("SELECT count(*) FROM usage_entries") == 100
    dead = ledger_db.rows(
        "SELECT topic, kafka_partition, kafka_offset, reason FROM dead_letters ORDER BY reason"
    )
    assert [row[0] for row in dead] == [billable_topics[0]] * 2
    assert "not JSON" in dead[0][3] or "not JSON" in dead[1][3]
    dlq = KafkaConsumer(
        bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=5000
    )
    dlq.assign([TopicPartition(billable_topics[1], 0)])
    messages = list(dlq)
    dlq.close()
    assert len(messages) == 2
    headers = dict(messages[0].headers)
    assert headers["tollgate-topic"].decode() == billable_topics[0]
    assert {int(dict(m.headers)["tollgate-offset"]) for m in messages} == {row[2] for row in dead}


@pytest.mark.slow
def test_kill_9_during_a_batch_then_restart_loses_nothing_and_doubles_nothing(
    ledger_db: LedgerDb, kafka_bootstrap: str, billable_topics: tuple[str, str], tmp_path: Path
) -> None:
    usages = synthetic_billables(30_000)
    produced = produce(kafka_bootstrap, billable_topics[0], usages + usages[:3_000])  # some delivered twice
    first = serve_ledger(ledger_db, kafka_bootstrap, billable_topics, tmp_path)
    try:
        wait_for(
            lambda: ledger_db.scalar("SELECT count(*) FROM usage_entries") >= 3_000, 60, "the first batches"
        )
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        first.kill()
    at_kill = ledger_db.scalar("SELECT count(*) FROM usage_entries")
    assert at_kill < len(usages), "the ledger finished before the kill; the test proves nothing"
    second = serve_ledger(ledger_db, kafka_bootstrap, billable_topics, tmp_path)
    try:
        caught_up = lambda: offsets_total(ledger_db, billable_topics[0]) == produced  # noqa: E731
        wait_for(caught_up, 120, "the restarted ledger to catch up")
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=30) == 0, (tmp_path / "ledger.log").read_text()[-3000:]
    count, calls, distinct = ledger_db.rows(
        "SELECT count(*), sum(calls), count(DISTINCT usage_id) FROM usage_entries"
    )[0]
    assert (count, calls, distinct) == (len(usages), len(usages), len(usages))
    assert {u.usage_id for u in usages} == {
        r[0] for r in ledger_db.rows("SELECT usage_id FROM usage_entries")
    }


@pytest.fixture
def own_postgres() -> Iterator[dict[str, Any]]:
    """A dedicated PostgreSQL this test may stop and start (the session's is shared)."""
    work = Path(tempfile.mkdtemp(prefix="tollgate-ledger-pg-"))
    data = work / "postgres" / "data"
    try:
        info = stack_postgres.start(StackConfig(stack_dir=work, parts=("postgres",)),
            {"postgres": free_port()},
                                    lambda pid: None)  # fmt: skip
    except Exception as exc:
        stack_postgres.stop(stack_postgres.read_pid(data))
        pytest.skip(f"cannot start a dedicated PostgreSQL: {exc}")
    pg_ctl = str(Path(info["bin_dir"]) / "pg_ctl")
    options = f"-p {info['port']} -k {info['socket_dir']} -c listen_addresses=127.0.0.1 -c fsync=off"
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def control(action: str) -> None:
        argv = [pg_ctl, "-w", "-D", str(data), "-m", "fast", "stop"] if action == "stop" else [
            pg_ctl, "-w", "-D", str(data), "-l", info["log"], "-o", options, "start"]  # fmt: skip
        subprocess.run([*prefix, *argv], check=True, capture_output=True, timeout=60)  # noqa: S603

    try:
        yield {"owner": info["database_url"], "app": info["app_database_url"], "control": control}
    finally:
        stack_postgres.stop(stack_postgres.read_pid(data))
        shutil.rmtree(work, ignore_errors=True)


@pytest.mark.slow
def test_postgresql_stopped_for_a_while_is_retried_without_advancing_offsets_and_caught_up(
    own_postgres: dict,
    kafka_bootstrap: str,
    billable_topics: tuple[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="services.ledger.adapters.kafka.consumer")
    with ledger_schema(own_postgres["owner"], own_postgres["app"], "outage") as db:
        consumer = LedgerConsumer(settings_for(kafka_bootstrap, db, billable_topics, batch_max=200))
        stop = threading.Event()
        worker = threading.Thread(target=consumer.run, args=(stop,))
        worker.start()
        try:
            before, during = synthetic_billables(2_000), synthetic_billables(3_000, start_index=2_000)
            produce(kafka_bootstrap, billable_topics[0], before)
            wait_for(lambda: offsets_total(db, billable_topics[0]) == 2_000, 60, "the first 2,000")
            own_postgres["control"]("stop")
            produce(kafka_bootstrap, billable_topics[0], during)
            time.sleep(6)  # several failed attempts with backoff
            assert sum(consumer.positions.values()) == 2_000, "offsets moved while PostgreSQL was down"
            assert "offsets not advanced" in caplog.text
            own_postgres["control"]("start")
            wait_for(
                lambda: _reachable(db) and offsets_total(db, billable_topics[0]) == 5_000,
                90,
                "catching up after the outage",
            )
        finally:
            stop.set()
            worker.join(timeout=30)
        count, calls = db.rows("SELECT count(DISTINCT usage_id), sum(calls) FROM usage_entries")[0]
        assert (count, calls) == (5_000, 5_000)


def _reachable(db: LedgerDb) -> bool:
    try:
        db.scalar("SELECT 1")
    except psycopg.OperationalError:
        return False
    return True
