"""The write ahead: a batch is read and decoded while the one before it is stored, and stays exact."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

import psycopg
import pytest
from ledger_support import LedgerDb, produce, settings_for, synthetic_billables

from services.ledger.adapters.kafka.consumer import LedgerConsumer
from services.ledger.adapters.postgres import chain_store

pytestmark = pytest.mark.integration

ROWS = 3_000
BATCH = 500


class Observed(LedgerConsumer):
    """Counts decoded batches; the write of batch `hold` waits until the batch after it was decoded."""

    def __init__(self, *args: Any, hold: int, fail: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hold, self.fail = hold, fail
        self.sizes: list[int] = []  # records of each decoded batch, in order
        self.writes = 0
        self.next_decoded = threading.Event()
        self.overlapped: bool | None = None

    def _decode(self, records: Sequence[Any]) -> Any:
        decoded = super()._decode(records)
        if records:
            self.sizes.append(len(records))
            if len(self.sizes) == self.hold + 1:
                self.next_decoded.set()
        return decoded

    def _insert(self, cursor: psycopg.Cursor[Any], rows: Sequence[Any]) -> int:
        inserted = super()._insert(cursor, rows)
        self.writes += 1
        if self.writes == self.hold and self.overlapped is None:
            # Sequentially the next batch is decoded only after this write: the wait would time out.
            self.overlapped = self.next_decoded.wait(20)
            if self.fail:
                raise psycopg.OperationalError("connection lost before commit, next batch read ahead (test)")
        return inserted


def assert_stored_once(db: LedgerDb, topic: str, produced: int) -> None:
    """Every delta once, the offsets at the end of the topic, and the licensee's chain intact."""
    assert db.scalar("SELECT count(*) FROM usage_entries") == ROWS
    assert db.scalar("SELECT count(DISTINCT usage_id) FROM usage_entries") == ROWS
    assert db.scalar("SELECT sum(calls) FROM usage_entries") == ROWS
    stored = "SELECT coalesce(sum(next_offset), 0) FROM consumer_offsets WHERE topic = %s"
    assert db.scalar(stored, (topic,)) == produced
    with psycopg.connect(db.app_url) as conn:
        assert chain_store.verify(conn, "bench")["intact"]


def test_the_next_batch_is_read_and_decoded_while_the_one_before_is_being_stored(
    ledger_db: LedgerDb, kafka_bootstrap: str, billable_topics: tuple[str, str]
) -> None:
    produced = produce(kafka_bootstrap, billable_topics[0], synthetic_billables(ROWS))
    consumer = Observed(settings_for(kafka_bootstrap, ledger_db, billable_topics, batch_max=BATCH), hold=2)
    consumer.drain(timeout=90)
    consumer.close()
    assert consumer.overlapped is True
    assert_stored_once(ledger_db, billable_topics[0], produced)


def test_a_write_that_fails_with_the_next_batch_read_ahead_drops_that_batch_and_stores_each_row_once(
    ledger_db: LedgerDb, kafka_bootstrap: str, billable_topics: tuple[str, str]
) -> None:
    produced = produce(kafka_bootstrap, billable_topics[0], synthetic_billables(ROWS))
    settings = settings_for(kafka_bootstrap, ledger_db, billable_topics, batch_max=BATCH)
    consumer = Observed(settings, hold=2, fail=True)
    consumer.drain(timeout=90)
    consumer.close()
    assert consumer.overlapped is True
    # The failed batch and the one read ahead were decoded, dropped, and read again after the seek back.
    assert sum(consumer.sizes) == ROWS + consumer.sizes[1] + consumer.sizes[2]
    assert_stored_once(ledger_db, billable_topics[0], produced)


class FailingWrites(LedgerConsumer):
    """A consumer whose first `failures` writes fail after their rows are staged."""

    def __init__(self, *args: Any, failures: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.failures = failures

    def _insert(self, cursor: psycopg.Cursor[Any], rows: Sequence[Any]) -> int:
        inserted = super()._insert(cursor, rows)
        if self.failures:
            self.failures -= 1
            raise psycopg.OperationalError("statement failed before commit (test)")
        return inserted


def test_a_write_that_keeps_failing_backs_off_longer_each_time_although_its_batch_was_handed_over(
    ledger_db: LedgerDb,
    kafka_bootstrap: str,
    billable_topics: tuple[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="services.ledger.adapters.kafka.consumer_loop")
    produced = produce(kafka_bootstrap, billable_topics[0], synthetic_billables(ROWS))
    consumer = FailingWrites(settings_for(kafka_bootstrap, ledger_db, billable_topics), failures=3)
    consumer.drain(timeout=90)
    consumer.close()
    retries = [r.getMessage() for r in caplog.records if "offsets not advanced" in r.getMessage()]
    assert [m.split("; retry ")[1].split(" in ")[0] for m in retries] == ["1", "2", "3"], retries
    assert_stored_once(ledger_db, billable_topics[0], produced)
