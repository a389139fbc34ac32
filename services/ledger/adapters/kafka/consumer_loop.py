"""The loop every ledger consumer runs: Kafka records into PostgreSQL, offsets in the same transaction.

Delivery guarantee:
- Kafka delivers at least once: offsets are never committed to Kafka. On start (and after any failure) the
  consumer seeks every partition it owns to the next offset stored in `consumer_offsets`, or the beginning.
- Effects in PostgreSQL are exactly once: a batch's rows, its dead letters and the partitions' next offsets
  are written in ONE transaction, after the partitions' ownership is checked under lock
  (adapters/postgres/ownership.py); each subclass stores a row's id once, so re-reads change nothing.
- A failed batch (PostgreSQL down, Kafka error) is rolled back, offsets do not move, and the consumer seeks
  back to the stored offsets and retries with capped exponential backoff: records are never skipped. A batch
  refused because another instance claimed one of its partitions (Fenced) is rolled back the same way and
  the partition is left to its new owner.
- The DLQ topic is at least once: a crash between producing a dead letter and committing repeats it there;
  the `dead_letters` table holds each (topic, partition, offset) once.
- A batch is read and decoded while the batch before it is being stored (write_ahead.py): one write in
  flight, handed over only after the one before it committed, so all of the above holds batch by batch.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import psycopg
from kafka.errors import KafkaError
from prometheus_client import Gauge

from services.ledger.adapters.kafka.dead_letters import DeadLetterPublisher, dead_letter_rows
from services.ledger.adapters.kafka.fetch import Fetcher, Group, KafkaFailure
from services.ledger.adapters.kafka.positioning import Positioning
from services.ledger.adapters.kafka.write_ahead import WriteAhead
from services.ledger.adapters.postgres.ownership import Ownership
from services.ledger.errors import Fenced, LedgerError
from services.ledger.metrics import LedgerMetrics
from services.ledger.settings import LedgerSettings

log = logging.getLogger(__name__)

INSERT_DEAD = (
    "INSERT INTO dead_letters (topic, kafka_partition, kafka_offset, reason, payload) "
    "VALUES (%s, %s, %s, %s, %s) ON CONFLICT ON CONSTRAINT dead_letters_once DO NOTHING"
)
# KafkaError: the DLQ producer (kafka-python); KafkaFailure: the fetcher (aiokafka).
TRANSIENT = (psycopg.Error, KafkaError, KafkaFailure, OSError, LedgerError)


class TopicConsumer(Positioning):
    """One topic into PostgreSQL; `run` until stopped, or `drain` what is there (tests, bench).

    Subclasses give `kind`, `_decode`, `_insert` and `_lag`, and may set up a connection (`_prepare`) or
    act before a batch's transaction (`_before_write`); `splits = False` reads every partition in every
    instance instead of splitting them in a Kafka group.
    """

    kind = "records"
    splits = True

    def __init__(
        self, settings: LedgerSettings, metrics: LedgerMetrics | None = None, database_url: str | None = None
    ) -> None:
        self.settings = settings
        self.database_url = database_url or settings.app_database_url
        self.metrics = metrics or LedgerMetrics()
        self.positions: dict[int, int] = {}  # next offset per partition, as committed in PostgreSQL
        self._kafka: Fetcher | None = None
        self._dlq: DeadLetterPublisher | None = None
        self._conn: psycopg.Connection | None = None
        self._needs_seek = True
        self._failures = 0
        self.grouped = self.splits and settings.partitions is None
        self.ownership = Ownership(settings.consumer_group, settings.topic, fenced=self.grouped)
        self._pending: set[int] = set()  # assigned by the group, not claimed in PostgreSQL yet
        self._ahead = WriteAhead(f"ledger-{self.kind}-writer")

    def run(self, stop: threading.Event) -> None:
        """Consume until `stop` is set; each failure is rolled back and retried, never skipped."""
        try:
            while not stop.is_set():
                self.attempt(stop)
        finally:
            self.close()

    def attempt(self, stop: threading.Event | None = None, action: Callable[[], int] | None = None) -> int:
        """One batch (or `action`); on failure roll back, back off and return 0 (the next one seeks back)."""
        try:
            handled = (action or self.step)()
        except Fenced as exc:
            log.warning("ledger %s batch refused, rolled back: %s; left to the owner", self.kind, exc)
            self._lose(exc.partitions)
            self._reset()
            return 0
        except TRANSIENT as exc:
            self._failures += 1
            delay = min(self.settings.backoff_max_seconds, 0.2 * 2 ** min(self._failures, 10))
            delay *= random.uniform(0.8, 1.0)  # noqa: S311 - jitter, not security
            log.warning(
                "ledger batch failed, rolled back, offsets not advanced; retry %d in %.1fs: %s",
                self._failures,
                delay,
                exc,
            )
            self._reset()
            self._wait(delay, stop or threading.Event())
            return 0
        return handled

    def step(self) -> int:
        """Poll and decode one batch; hand its transaction to the writer once the one before is stored."""
        kafka = self._ensure_ready()
        records = kafka.poll(self.settings.poll_timeout_ms, self.settings.batch_max)
        if self.grouped:
            if self._pending or kafka.moved_since():
                self._settle()  # claims and losses use the connection and the epochs the writer reads
            records = self._rebalanced(kafka, records)
        ends: dict[int, int] = {}
        for record in records:
            ends[record.partition] = max(ends.get(record.partition, 0), record.offset + 1)
        self._past_markers(kafka, ends, self._ahead.ends)
        rows, dead = self._decode(records) if ends else ([], [])
        self._settle()
        if not ends:
            self._failures = 0  # nothing to write, nothing in flight: the attempt succeeded
        else:
            if dead and self.settings.dlq_topic:  # no DLQ topic: the dead_letters table only
                s = self.settings
                self._dlq = self._dlq or DeadLetterPublisher(
                    s.kafka_bootstrap, s.dlq_topic, security=s.kafka_security
                )
                self._dlq.publish(dead)
            self._ahead.submit(partial(self._write, rows, dead, ends), ends)
        self._report_lag(kafka)
        return len(records)

    def _settle(self) -> int:
        """Wait for the batch in flight to commit (its error raises here); its offsets become positions."""
        settled = self._ahead.settle()
        if settled is None:
            return 0
        inserted, ends = settled
        self.positions.update(ends)
        self.metrics.written(self.kind, inserted)
        self._failures = 0  # the backoff grows until a write commits, not until one is handed over
        return inserted

    def _settle_aside(self) -> None:
        """Settle the write in flight while recovering from another failure, or closing: its outcome counts
        (a committed write's offsets and metrics, a refused one's lost partitions), its error is logged."""
        try:
            self._settle()
        except Fenced as exc:
            log.warning("ledger %s batch in flight refused, rolled back: %s", self.kind, exc)
            self._lose(exc.partitions)
        except Exception as exc:  # the caller is already recovering or closing; the seek back follows
            log.warning("ledger %s batch in flight failed, rolled back: %s", self.kind, exc)

    def drain(self, timeout: float = 120.0) -> None:
        """Consume until every partition it owns is committed up to the end offsets seen now."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                kafka = self._ensure_ready()
                if not self.grouped or (self.ownership.epochs and not self._pending):
                    ends = kafka.end_offsets(self.ownership.owned(kafka.partitions))
                    break
                self.attempt()  # the group assigns, and the claim follows, on a poll
            except TRANSIENT:
                self._reset()
                time.sleep(0.5)
            if time.monotonic() > deadline:
                raise LedgerError(f"no partitions of {self.settings.topic} within {timeout:.0f}s")
        while True:
            done = all(self.positions.get(partition, 0) >= end for partition, end in ends.items())
            if done and not self._ahead.busy:
                return
            if time.monotonic() > deadline:
                raise LedgerError(f"drain timed out at {self.positions}, ends {ends}")
            self.attempt(action=self._settle if done else None)

    def _write(self, rows: Sequence[Any], dead: Sequence[tuple[Any, str]], ends: dict[int, int]) -> int:
        assert self._conn is not None  # noqa: S101 - _ensure_ready connected
        inserted = 0
        self._before_write(rows)
        with self._conn.transaction(), self._conn.cursor() as cursor:
            self.ownership.guard(cursor, ends)  # first: a partition claimed by another instance refuses all
            if rows:
                inserted = self._insert(cursor, rows)
            if dead:
                cursor.executemany(INSERT_DEAD, dead_letter_rows(dead))
            self.ownership.store(cursor, ends)
        return inserted

    def _decode(self, records: Sequence[Any]) -> tuple[list[Any], list[tuple[Any, str]]]:
        """The rows of the records, and the dead letters with their reasons."""
        raise NotImplementedError

    def _insert(self, cursor: psycopg.Cursor[Any], rows: Sequence[Any]) -> int:
        """Store the batch's new rows inside its open transaction; return how many were new."""
        raise NotImplementedError

    def _lag(self) -> Gauge:
        raise NotImplementedError

    def _prepare(self, conn: psycopg.Connection) -> None:
        """Session setup on a new connection (none by default)."""

    def _before_write(self, rows: Sequence[Any]) -> None:
        """Outside the batch's transaction (nothing by default)."""

    def _ensure_ready(self) -> Fetcher:
        if self._conn is None or self._conn.closed:
            self._settle()  # a write in flight on the broken connection raises here, before anything new
            self._conn = psycopg.connect(
                self.database_url, connect_timeout=5, keepalives=1, keepalives_idle=10
            )
            with self._conn.transaction():
                self._prepare(self._conn)
            self._needs_seek = True
        if self._kafka is None:
            self._kafka = self._new_kafka()
            self._needs_seek = True
        if self._needs_seek:
            self._seek(self._kafka)
            self._needs_seek = False
        return self._kafka

    def _new_kafka(self) -> Fetcher:
        s = self.settings
        # One Kafka group per PostgreSQL consumer group and topic: the fence's domain is exactly the group's.
        group = Group(f"{s.consumer_group}.{s.topic}", s.session_timeout_ms) if self.grouped else None
        fetcher = Fetcher(
            s.kafka_bootstrap, s.topic, s.partitions, s.batch_max, security=s.kafka_security, group=group
        )
        try:
            fetcher.open()
        except BaseException:
            fetcher.close()
            raise
        return fetcher

    def _reset(self) -> None:
        """Drop the connection (a broken one cannot be trusted) and seek again before the next batch."""
        self._settle_aside()  # first: the writer may be using the connection
        if self._conn is not None:
            try:
                self._conn.close()
            except psycopg.Error:
                log.debug("closing a broken connection failed", exc_info=True)
            self._conn = None
        self._needs_seek = True

    def close(self) -> None:
        """Release Kafka and PostgreSQL; nothing is committed to Kafka."""
        self._reset()
        self._ahead.close()
        if self._kafka is not None:
            self._kafka.close()
            self._kafka = None
        if self._dlq is not None:
            self._dlq.close()
            self._dlq = None
