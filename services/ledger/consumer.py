"""Billable deltas from Kafka into PostgreSQL, exactly once in effect.

Delivery guarantee:
- Kafka delivers at least once: offsets are never committed to Kafka. On start (and after any failure) the
  consumer seeks every partition to the next offset stored in `consumer_offsets`, or to the beginning.
- Effects in PostgreSQL are exactly once: a batch's usage rows, its dead letters and the partitions' next
  offsets are written in ONE transaction, and each usage_id is stored once (primary key; stored ones are
  filtered out before the INSERT), so replays, processor re-emissions and records re-read after a crash
  change nothing.
- A failed batch (PostgreSQL down, Kafka error) is rolled back, offsets do not move, and the consumer seeks
  back to the stored offsets and retries with capped exponential backoff: records are never skipped.
- The DLQ topic is at least once: a crash between producing a dead letter and committing repeats it there;
  the `dead_letters` table holds each (topic, partition, offset) once.

Partitions are assigned statically (all of the topic's, or TOLLGATE_LEDGER_PARTITIONS), without a consumer
group. Two instances on the same partitions stay correct (idempotent rows, offsets only move forward) but do
the work twice; to scale out, give each instance a disjoint partition list. Added partitions need a restart.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Sequence
from typing import Any

import psycopg
from kafka.errors import KafkaError
from prometheus_client import Gauge

from services.ledger.codec import USAGE_COLUMNS, USAGE_TYPES, UsageRow, decode, to_row
from services.ledger.dead_letters import DeadLetterPublisher, dead_letter_rows
from services.ledger.errors import LedgerError, Rejected
from services.ledger.fastpath import FastRows
from services.ledger.fetch import Fetcher, KafkaFailure
from services.ledger.metrics import LedgerMetrics
from services.ledger.partitions import MonthPartitions
from services.ledger.settings import LedgerSettings

log = logging.getLogger(__name__)

_COLUMNS = ", ".join(USAGE_COLUMNS)
STAGING_DDL = (
    "CREATE TEMP TABLE IF NOT EXISTS ledger_usage_staging (LIKE usage_entries INCLUDING DEFAULTS) "
    "ON COMMIT DELETE ROWS"
)
COPY_STAGING = f"COPY ledger_usage_staging ({_COLUMNS}) FROM STDIN (FORMAT BINARY)"
# The column list is a constant of this module, never input: nothing outside reaches this string.
# Each usage_id once: the batch's own repeats collapse to the earliest offset, stored ones are left out.
# No ON CONFLICT: the hash-chain trigger (migration 0005) must never link a row that is then skipped, so a
# concurrent writer of the same usage_id is a unique violation, rolled back and retried like any failure.
# Rows go in licensee order: the trigger locks each licensee's chain until commit, and one order for every
# writer means two consumers on the same partitions cannot deadlock.
INSERT_USAGE = (
    f"INSERT INTO usage_entries ({_COLUMNS}) SELECT {_COLUMNS} FROM ("  # noqa: S608
    f"SELECT DISTINCT ON (usage_id) {_COLUMNS} FROM ledger_usage_staging "
    "ORDER BY usage_id, kafka_partition, kafka_offset) AS s "
    "WHERE NOT EXISTS (SELECT 1 FROM usage_entries u WHERE u.usage_id = s.usage_id) "
    "ORDER BY licensee_id, kafka_partition, kafka_offset"
)
INSERT_DEAD = (
    "INSERT INTO dead_letters (topic, kafka_partition, kafka_offset, reason, payload) "
    "VALUES (%s, %s, %s, %s, %s) ON CONFLICT ON CONSTRAINT dead_letters_once DO NOTHING"
)
UPSERT_OFFSETS = """INSERT INTO consumer_offsets (consumer_group, topic, kafka_partition, next_offset)
    SELECT %s, %s, p, o FROM unnest(%s::int[], %s::bigint[]) AS t(p, o)
    ON CONFLICT (consumer_group, topic, kafka_partition) DO UPDATE
    SET next_offset = GREATEST(consumer_offsets.next_offset, EXCLUDED.next_offset), updated_at = now()"""
SELECT_OFFSETS = (
    "SELECT kafka_partition, next_offset FROM consumer_offsets WHERE consumer_group = %s AND topic = %s"
)
# KafkaError: the DLQ producer (kafka-python); KafkaFailure: the fetcher (aiokafka).
TRANSIENT = (psycopg.Error, KafkaError, KafkaFailure, OSError, LedgerError)


class LedgerConsumer:
    """One consumer of the billable topic; `run` until stopped, or `drain` what is there (tests, bench).

    A subclass consumes another topic the same way by overriding `kind`, `_prepare`, `_decode`, `_insert`
    and `_lag` (services/ledger/alert_consumer.py).
    """

    kind = "usage"

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
        self._fast = FastRows()
        self._needs_seek = True
        self._failures = 0
        self._months = MonthPartitions()
        self._period_start = USAGE_COLUMNS.index("period_start")

    def run(self, stop: threading.Event) -> None:
        """Consume until `stop` is set; each failure is rolled back and retried, never skipped."""
        try:
            while not stop.is_set():
                self.attempt(stop)
        finally:
            self.close()

    def attempt(self, stop: threading.Event | None = None) -> int:
        """One batch; on failure roll back, back off and return 0 (the next attempt seeks back first)."""
        try:
            handled = self.step()
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
            (stop or threading.Event()).wait(delay)
            return 0
        self._failures = 0
        return handled

    def step(self) -> int:
        """Poll one batch and write it in one transaction; return the records handled."""
        kafka = self._ensure_ready()
        records = kafka.poll(self.settings.poll_timeout_ms, self.settings.batch_max)
        ends: dict[int, int] = {}
        for record in records:
            ends[record.partition] = max(ends.get(record.partition, 0), record.offset + 1)
        self._past_markers(kafka, ends)
        if ends:
            rows, dead = self._decode(records)
            if dead and self.settings.dlq_topic:  # no DLQ topic: the dead_letters table only
                s = self.settings
                self._dlq = self._dlq or DeadLetterPublisher(
                    s.kafka_bootstrap, s.dlq_topic, security=s.kafka_security
                )
                self._dlq.publish(dead)
            inserted = self._write(rows, dead, ends)
            self.positions.update(ends)
            self.metrics.written(self.kind, inserted)
        self._report_lag(kafka)
        return len(records)

    def _past_markers(self, kafka: Fetcher, ends: dict[int, int]) -> None:
        """Move `ends` to the consumer's positions where they passed transaction markers.

        The processor writes in Kafka transactions: each commit leaves a marker that takes an offset and
        is never returned as a record. Storing the position past it keeps the stored offsets equal to the
        end of the topic once everything is read (lag 0, `drain` returns).
        """
        for partition in kafka.partitions:
            known = self.positions.get(partition)
            if known is None and partition not in ends:
                continue  # never read yet: its position is not resolved
            position = kafka.position(partition)
            if position > max(ends.get(partition, 0), known or 0):
                ends[partition] = position

    def drain(self, timeout: float = 120.0) -> None:
        """Consume until every partition is committed up to the end offsets seen now."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                ends = self._ensure_ready().end_offsets()
                break
            except TRANSIENT as exc:
                if time.monotonic() > deadline:
                    raise LedgerError(f"cannot reach Kafka and PostgreSQL: {exc}") from exc
                self._reset()
                time.sleep(0.5)
        while any(self.positions.get(partition, 0) < end for partition, end in ends.items()):
            if time.monotonic() > deadline:
                raise LedgerError(f"drain timed out at {self.positions}, ends {ends}")
            self.attempt()

    def _decode(self, records: Sequence[Any]) -> tuple[list[UsageRow], list[tuple[Any, str]]]:
        rows: list[UsageRow] = []
        dead: list[tuple[Any, str]] = []
        fast = self._fast.row
        for record in records:
            row = fast(record.value, record.topic, record.partition, record.offset)
            if row is not None:
                rows.append(row)
                continue
            try:  # the full path: the verdict on anything unusual, and the reason when it is refused
                rows.append(to_row(decode(record.value), record.topic, record.partition, record.offset))
            except Rejected as exc:
                log.warning("dead letter %s/%d@%d: %s", record.topic, record.partition, record.offset, exc)
                dead.append((record, str(exc)[:1000]))
        return rows, dead

    def _write(self, rows: Sequence[UsageRow], dead: Sequence[tuple[Any, str]], ends: dict[int, int]) -> int:
        assert self._conn is not None  # noqa: S101 - _ensure_ready connected
        inserted = 0
        self._before_write(rows)
        with self._conn.transaction(), self._conn.cursor() as cursor:
            if rows:
                inserted = self._insert(cursor, rows)
            if dead:
                cursor.executemany(INSERT_DEAD, dead_letter_rows(dead))
            cursor.execute(
                UPSERT_OFFSETS,
                (self.settings.consumer_group, self.settings.topic, list(ends), list(ends.values())),
            )
        return inserted

    def _insert(self, cursor: psycopg.Cursor[Any], rows: Sequence[Any]) -> int:
        """Store the batch's new rows inside its open transaction; return how many were new."""
        with cursor.copy(COPY_STAGING) as copy:
            copy.set_types(list(USAGE_TYPES))
            for row in rows:
                copy.write_row(row)
        cursor.execute(INSERT_USAGE)
        return cursor.rowcount

    def _before_write(self, rows: Sequence[Any]) -> None:
        """Outside the batch's transaction: the month partitions its usage rows need."""
        assert self._conn is not None  # noqa: S101 - _ensure_ready connected
        self._months.ensure(self._conn, (row[self._period_start] for row in rows))

    def _prepare(self, conn: psycopg.Connection) -> None:
        """Session setup on a new connection: the staging table the COPY fills."""
        conn.execute(STAGING_DDL)

    def _lag(self) -> Gauge:
        return self.metrics.lag

    def _ensure_ready(self) -> Fetcher:
        if self._conn is None or self._conn.closed:
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
        fetcher = Fetcher(s.kafka_bootstrap, s.topic, s.partitions, s.batch_max, security=s.kafka_security)
        try:
            fetcher.open()
        except BaseException:
            fetcher.close()
            raise
        return fetcher

    def _seek(self, kafka: Fetcher) -> None:
        """Position every partition at the offset PostgreSQL says comes next: the only source of truth."""
        assert self._conn is not None  # noqa: S101
        with self._conn.transaction():
            stored: dict[int, int] = dict(
                self._conn.execute(SELECT_OFFSETS, (self.settings.consumer_group, self.settings.topic))
            )
        self.positions = {p: stored[p] for p in kafka.partitions if p in stored}
        kafka.seek(self.positions)
        log.info("ledger consumer positioned at %s (others from the beginning)", self.positions)

    def _report_lag(self, kafka: Fetcher) -> None:
        for partition in kafka.partitions:
            highwater = kafka.highwater(partition)
            if highwater is not None:
                self._lag().labels(str(partition)).set(
                    max(0, highwater - self.positions.get(partition, 0))
                )

    def _reset(self) -> None:
        """Drop the connection (a broken one cannot be trusted) and seek again before the next batch."""
        if self._conn is not None:
            try:
                self._conn.close()
            except psycopg.Error:
                log.debug("closing a broken connection failed", exc_info=True)
            self._conn = None
        self._needs_seek = True
        self._months.forget()

    def close(self) -> None:
        """Release Kafka and PostgreSQL; nothing is committed to Kafka."""
        self._reset()
        if self._kafka is not None:
            self._kafka.close()
            self._kafka = None
        if self._dlq is not None:
            self._dlq.close()
            self._dlq = None
