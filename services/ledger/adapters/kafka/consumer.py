"""Billable deltas from Kafka into PostgreSQL, exactly once in effect.

Delivery guarantee: the loop of consumer_loop.py (offsets in PostgreSQL, written in the
same transaction as the rows; rollback, seek back and retry on any failure; the DLQ at least once). Each
usage_id is stored once (primary key; stored ones are filtered out before the INSERT), so replays, processor
re-emissions and records re-read after a crash or a rebalance change nothing.

Scale-out (../postgres/ownership.py): by default the instances of one TOLLGATE_LEDGER_CONSUMER_GROUP form
a Kafka group per topic and split its partitions. A newly assigned partition is claimed in PostgreSQL (its
epoch goes up) and sought to its stored offset before anything of it is read; every batch locks its
partitions' rows and is refused (Fenced, rolled back) when another instance claimed one since, so a killed
or stalled instance's partitions move to the survivors with nothing counted twice and nothing skipped.
TOLLGATE_LEDGER_PARTITIONS instead assigns a fixed list statically, without a group or epochs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from prometheus_client import Gauge

from services.ledger.adapters.kafka.consumer_loop import TopicConsumer, log
from services.ledger.adapters.postgres.partitions import MonthPartitions
from services.ledger.domain.codec import USAGE_COLUMNS, USAGE_TYPES, UsageRow, decode, to_row
from services.ledger.domain.fastpath import FastRows
from services.ledger.errors import Rejected
from services.ledger.metrics import LedgerMetrics
from services.ledger.settings import LedgerSettings

_COLUMNS = ", ".join(USAGE_COLUMNS)
STAGING_DDL = (
    "CREATE TEMP TABLE IF NOT EXISTS ledger_usage_staging (LIKE usage_entries INCLUDING DEFAULTS) "
    "ON COMMIT DELETE ROWS"
)
COPY_STAGING = f"COPY ledger_usage_staging ({_COLUMNS}) FROM STDIN (FORMAT BINARY)"
# The owner's ledger_append_usage (migration 0013) reads the staging table: SELECT on it for that role.
GRANT_STAGING = """DO $$ BEGIN
    EXECUTE format('GRANT SELECT ON pg_temp.ledger_usage_staging TO %I', (SELECT pg_get_userbyid(proowner)
        FROM pg_proc WHERE oid = 'ledger_append_usage()'::regprocedure));
END $$"""
# Each usage_id once (the batch's repeats collapse to the earliest offset, stored ones are left out), linked
# into its licensee's hash chain, in one call: the row trigger's work per batch instead of per row. No ON
# CONFLICT: a row is never linked and then skipped, so a concurrent writer of the same usage_id is a unique
# violation, rolled back and retried like any failure. Licensee order for the chains' locks: two consumers
# on the same partitions cannot deadlock.
INSERT_USAGE = "SELECT ledger_append_usage()"


def prepare_staging(conn: psycopg.Connection) -> None:
    """The session's staging table, readable by the function that stores it."""
    conn.execute(STAGING_DDL)
    conn.execute(GRANT_STAGING)


def store_usage(cursor: psycopg.Cursor[Any], rows: Sequence[Any]) -> int:
    """COPY `rows` into staging and store the new ones, chained, in the open transaction; return how many."""
    with cursor.copy(COPY_STAGING) as copy:
        copy.set_types(list(USAGE_TYPES))
        for row in rows:
            copy.write_row(row)
    stored = cursor.execute(INSERT_USAGE).fetchone()
    return int(stored[0]) if stored else 0


class LedgerConsumer(TopicConsumer):
    """The ledger's consumer of the billable topic; `run` until stopped, or `drain` (tests, bench).

    Its subclasses consume other topics the same way (alert_consumer.py).
    """

    kind = "usage"

    def __init__(
        self, settings: LedgerSettings, metrics: LedgerMetrics | None = None, database_url: str | None = None
    ) -> None:
        super().__init__(settings, metrics, database_url)
        self._fast = FastRows()
        self._months = MonthPartitions()
        self._period_start = USAGE_COLUMNS.index("period_start")

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

    def _insert(self, cursor: psycopg.Cursor[Any], rows: Sequence[Any]) -> int:
        """Store the batch's new rows inside its open transaction; return how many were new."""
        return store_usage(cursor, rows)

    def _before_write(self, rows: Sequence[Any]) -> None:
        """Outside the batch's transaction: the month partitions its usage rows need."""
        assert self._conn is not None  # noqa: S101 - _ensure_ready connected
        self._months.ensure(self._conn, (row[self._period_start] for row in rows))

    def _prepare(self, conn: psycopg.Connection) -> None:
        """Session setup on a new connection: the staging table the COPY fills."""
        prepare_staging(conn)

    def _lag(self) -> Gauge:
        return self.metrics.lag

    def _reset(self) -> None:
        """Drop the connection and the months known on it; seek again before the next batch."""
        super()._reset()
        self._months.forget()
