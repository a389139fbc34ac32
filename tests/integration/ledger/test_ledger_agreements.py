"""Agreements reach the ledger from the compacted agreements topic only: the agreement consumer stores each
version once with its Kafka record, keeps a renewal beside the first version, dead-letters tombstones and
invalid records with their origin, commits nothing of a failed batch, and re-reads nothing after a restart."""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from typing import Any

import orjson
import psycopg
import pytest
from kafka import KafkaProducer
from ledger_support import LedgerDb, settings_for
from test_ledger_transactions import _end_offsets

from services.clients.agreements import publish_agreements
from services.core.agreements import Agreement, load_agreements, parse_agreement
from services.demo.scenario import AGREEMENTS_FILE
from services.ledger.adapters.kafka.agreement_consumer import AgreementConsumer
from services.ledger.adapters.postgres import chain_store
from services.ledger.adapters.postgres.agreements_store import agreements_in_force
from services.ledger.settings import LedgerSettings

pytestmark = pytest.mark.integration


def pebble(**changes: Any) -> dict[str, Any]:
    """The demo's pebble agreement as a document, with `changes` applied."""
    raw = next(a.raw for a in load_agreements(AGREEMENTS_FILE) if a.licensee_id == "pebble")
    return {**copy.deepcopy(raw), **changes}


def first_term() -> dict[str, Any]:
    """Pebble's first term: March to December 2026."""
    return pebble(effective_to="2026-12-31")


def renewal() -> dict[str, Any]:
    """Pebble's renewal from January 2027, at a higher fee."""
    return pebble(effective_from="2027-01-01", plan={**pebble()["plan"], "monthly_fee_minor": 12_000})


def produce_raw(bootstrap: str, topic: str, records: list[tuple[bytes, bytes | None]]) -> None:
    """Publish raw (key, value) records with acks=all; a None value is a tombstone."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        for key, value in records:
            producer.send(topic, key=key, value=value)
        producer.flush(timeout=30)
    finally:
        producer.close()


@pytest.fixture
def agreements_topic(new_topic: Callable[..., str]) -> str:
    """A fresh compacted 3-partition agreements topic."""
    return new_topic(partitions=3, compacted=True, suffix="agreements")


def agreement_settings_for(bootstrap: str, db: LedgerDb, topic: str, **overrides: Any) -> LedgerSettings:
    """Ledger settings whose agreement consumer reads `topic`."""
    return settings_for(bootstrap, db, ("unused.billable", "unused.dlq"), agreements_topic=topic, **overrides)


def drain(settings: LedgerSettings) -> AgreementConsumer:
    """A consumer that read everything there is, closed."""
    consumer = AgreementConsumer(settings)
    consumer.drain(timeout=60)
    consumer.close()
    return consumer


def stored(db: LedgerDb) -> list[tuple[Any, ...]]:
    """Every stored version: licensee, start, fee, and the record it came in."""
    return db.rows("""SELECT licensee_id, effective_from::date::text, document->'plan'->>'monthly_fee_minor',
        kafka_topic, kafka_partition, kafka_offset FROM agreements ORDER BY agreement_version""")


def parsed(*documents: dict[str, Any]) -> list[Agreement]:
    """The agreements of `documents`."""
    return [parse_agreement(d) for d in documents]


def test_each_version_is_stored_once_with_its_record_and_bad_records_are_dead_lettered_with_their_origin(
    ledger_db: LedgerDb, kafka_bootstrap: str, agreements_topic: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="services.ledger.adapters.kafka.agreement_consumer")
    publish_agreements(kafka_bootstrap, parsed(first_term(), renewal(), first_term()), agreements_topic)
    bad_plan = orjson.dumps({"data": {**first_term(), "plan": "free"}})
    produce_raw(kafka_bootstrap, agreements_topic, [(b"pebble", None), (b"pebble", b"{not json"),
                                                    (b"pebble", bad_plan)])  # fmt: skip
    drain(agreement_settings_for(kafka_bootstrap, ledger_db, agreements_topic))
    rows = stored(ledger_db)
    # The renewal beside the first term; the re-published first term (offset 2) changed nothing.
    assert [r[:3] for r in rows] == [("pebble", "2026-03-01", "10000"), ("pebble", "2027-01-01", "12000")]
    assert [(r[3], r[5]) for r in rows] == [(agreements_topic, 0), (agreements_topic, 1)]
    dead = ledger_db.rows("SELECT topic, kafka_partition, kafka_offset, reason FROM dead_letters ORDER BY 3")
    partition = rows[0][4]
    assert [d[:3] for d in dead] == [(agreements_topic, partition, offset) for offset in (3, 4, 5)]
    assert dead[0][3].startswith("tombstone") and dead[1][3].startswith("not JSON")
    assert dead[2][3].startswith("data.plan")
    assert f"dead letter {agreements_topic}/{partition}@3" in caplog.text
    query = "SELECT kafka_partition, next_offset FROM consumer_offsets WHERE topic = %s"
    offsets = dict(ledger_db.rows(query, (agreements_topic,)))
    assert offsets == {p: end for p, end in _end_offsets(kafka_bootstrap, agreements_topic).items() if end}
    with psycopg.connect(ledger_db.app_url) as conn:
        assert chain_store.verify(conn, "pebble")["intact"]
        assert [a.plan.monthly_fee_minor for a in agreements_in_force(conn, "pebble")] == [10_000, 12_000]


class FailingOnce(AgreementConsumer):
    """Inserts its first batch, then fails before the commit, as a dropped connection would."""

    failed = False

    def _insert(self, cursor: psycopg.Cursor, rows: Any) -> int:  # type: ignore[override]
        inserted = super()._insert(cursor, rows)
        if not self.failed:
            self.failed = True
            raise psycopg.OperationalError("connection lost before commit (test)")
        return inserted


def test_a_failed_batch_commits_nothing_and_a_restart_or_another_group_rereads_nothing(
    ledger_db: LedgerDb, kafka_bootstrap: str, agreements_topic: str
) -> None:
    publish_agreements(kafka_bootstrap, parsed(first_term(), renewal()), agreements_topic)
    settings = agreement_settings_for(kafka_bootstrap, ledger_db, agreements_topic)
    consumer = FailingOnce(settings)
    deadline = time.monotonic() + 30
    while not consumer.failed and time.monotonic() < deadline:
        consumer.attempt()  # the first polls may come back empty while the fetch starts
    assert consumer.failed
    assert ledger_db.scalar("SELECT count(*) FROM agreements") == 0
    assert ledger_db.scalar("SELECT count(*) FROM consumer_offsets") == 0, "offsets moved on a failed batch"
    consumer.drain(timeout=60)
    consumer.close()
    before = stored(ledger_db)
    assert len(before) == 2
    drain(settings)  # a restart: positioned at the stored offsets
    # Another consumer group reads the topic from the beginning: each record is stored at most once.
    drain(agreement_settings_for(kafka_bootstrap, ledger_db, agreements_topic, consumer_group="another"))
    assert stored(ledger_db) == before


def test_going_back_to_an_earlier_document_puts_it_back_in_force_as_the_processor_reads_it(
    ledger_db: LedgerDb, kafka_bootstrap: str, agreements_topic: str
) -> None:
    raised = pebble(plan={**pebble()["plan"], "monthly_fee_minor": 20_000})
    publish_agreements(kafka_bootstrap, parsed(pebble(), raised, pebble()), agreements_topic)
    drain(agreement_settings_for(kafka_bootstrap, ledger_db, agreements_topic))
    assert [r[2] for r in stored(ledger_db)] == ["10000", "20000", "10000"]
    with psycopg.connect(ledger_db.app_url) as conn:
        assert [a.plan.monthly_fee_minor for a in agreements_in_force(conn, "pebble")] == [10_000]
