"""Alerts from Kafka into the `alerts` table, exactly once in effect, as the billable consumer does it.

The processor publishes alerts inside its Kafka transactions; this consumer reads them `read_committed` and
is a LedgerConsumer (consumer.py) on the alerts topic: the same split of the partitions
between instances (a Kafka group of its own, epochs in PostgreSQL; adapters/postgres/ownership.py), positions
stored in `consumer_offsets` in the same PostgreSQL transaction as the rows, rollback and retry on any
transient error, drain for tests. Only the rows differ: each alert_id is stored once (stored ones and the
batch's own repeats are left out before the INSERT, never ON CONFLICT, for the hash chain's sake). A record
that is not a valid alert is logged with its topic, partition and offset and kept in `dead_letters` (and on
TOLLGATE_LEDGER_ALERTS_DLQ_TOPIC when one is set).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Any

import psycopg
from prometheus_client import Gauge

from services.ledger.adapters.kafka.consumer import LedgerConsumer
from services.ledger.domain import alert_codec
from services.ledger.domain.alert_codec import ALERT_COLUMNS, AlertRow
from services.ledger.errors import Rejected
from services.ledger.metrics import LedgerMetrics
from services.ledger.settings import LedgerSettings

log = logging.getLogger(__name__)

_COLUMNS = ", ".join(ALERT_COLUMNS)
_VALUES = ", ".join(["%s"] * len(ALERT_COLUMNS))
# Constants of this module, never input. One row per alert id, the earliest offset of the batch's repeats;
# licensee order, as the usage INSERT, so two writers take the chain locks in one order.
INSERT_ALERTS = (
    f"INSERT INTO alerts ({_COLUMNS}) SELECT {_COLUMNS} FROM ("  # noqa: S608
    f"SELECT DISTINCT ON (alert_id) * FROM (VALUES {{rows}}) AS v ({_COLUMNS}) "
    "ORDER BY alert_id, kafka_partition, kafka_offset) AS s "
    "WHERE NOT EXISTS (SELECT 1 FROM alerts a WHERE a.alert_id = s.alert_id) "
    "ORDER BY licensee_id, kafka_partition, kafka_offset"
)
CHUNK = 1000
_TYPED = (
    "%s::uuid, %s, %s, %s, %s, %s, %s::timestamptz, %s::timestamptz, %s::bigint, %s::bigint, "
    "%s::text[], %s, %s, %s, %s::timestamptz, %s::timestamptz, %s, %s, %s::integer, %s::bigint"
)


def alert_settings(settings: LedgerSettings) -> LedgerSettings:
    """The billable consumer's settings turned to the alerts topic (all its partitions, split in a group)."""
    return dataclasses.replace(
        settings, topic=settings.alerts_topic, dlq_topic=settings.alerts_dlq_topic, partitions=None
    )


class AlertConsumer(LedgerConsumer):
    """The ledger's consumer of the alerts topic; `run` until stopped, or `drain` (tests)."""

    kind = "alert"

    def __init__(
        self, settings: LedgerSettings, metrics: LedgerMetrics | None = None, database_url: str | None = None
    ) -> None:
        super().__init__(alert_settings(settings), metrics, database_url)

    def _prepare(self, conn: psycopg.Connection) -> None:
        """Nothing to set up: alerts are few, so they go in as one multi-row INSERT."""

    def _before_write(self, rows: Sequence[Any]) -> None:
        """Nothing before the transaction: the alerts table is not partitioned."""

    def _decode(self, records: Sequence[Any]) -> tuple[list[AlertRow], list[tuple[Any, str]]]:
        rows: list[AlertRow] = []
        dead: list[tuple[Any, str]] = []
        for record in records:
            try:
                envelope = alert_codec.decode(record.value)
                rows.append(alert_codec.to_row(envelope, record.topic, record.partition, record.offset))
            except Rejected as exc:
                log.warning("dead letter %s/%d@%d: %s", record.topic, record.partition, record.offset, exc)
                dead.append((record, str(exc)[:1000]))
        return rows, dead

    def _insert(self, cursor: psycopg.Cursor[Any], rows: Sequence[AlertRow]) -> int:
        """Insert the batch's alerts not stored yet, in statements of CHUNK rows; return how many were new."""
        inserted = 0
        for start in range(0, len(rows), CHUNK):  # a statement takes at most 65,535 parameters
            chunk = rows[start : start + CHUNK]
            statement = INSERT_ALERTS.replace("{rows}", ", ".join(f"({_TYPED})" for _ in chunk))
            cursor.execute(statement, [value for row in chunk for value in row])  # type: ignore[arg-type]
            inserted += cursor.rowcount
        return inserted

    def _lag(self) -> Gauge:
        return self.metrics.alerts_lag
