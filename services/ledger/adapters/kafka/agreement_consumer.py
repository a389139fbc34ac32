"""Agreements from the compacted agreements topic into the `agreements` table, exactly once in effect.

The ledger's one source of agreements is the topic `tollgate agreements load` publishes to, the same one the
processor follows. This consumer is a LedgerConsumer (consumer.py) on that topic, as the
alerts consumer is, except that it does not split the topic between instances (every instance reads every
partition): `read_committed`, positions in `consumer_offsets` written in the same PostgreSQL transaction as
the rows, rollback and seek back on any transient error, `drain` for tests.

Only the rows differ. The table is append-only and hash-chained (migrations 0002, 0005): each new version is a
new row with the record it came in, and a record whose document is the version already in force for its
licensee and start is stored once (adapters/postgres/agreements_store.py, migration 0009). A record is judged
as the processor judges it (its `data` must be a valid agreement); one that is not, one holding NUL (text
cannot) and a tombstone (the ledger never forgets a version; end an agreement with a new version's
`effective_to`) are logged with topic, partition and offset and kept in `dead_letters`, and also published to
TOLLGATE_LEDGER_AGREEMENTS_DLQ_TOPIC when one is set.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Any

import orjson
import psycopg
from prometheus_client import Gauge

from services.core.agreements import Agreement, agreement_from_cloudevent
from services.core.errors import ValidationFailed
from services.ledger.adapters.kafka.consumer import LedgerConsumer
from services.ledger.adapters.postgres.agreements_store import insert_agreement
from services.ledger.domain.codec import has_nul
from services.ledger.errors import Rejected
from services.ledger.metrics import LedgerMetrics
from services.ledger.settings import LedgerSettings

log = logging.getLogger(__name__)

AgreementRow = tuple[Agreement, str, int, int]  # the version and the record it came in
TOMBSTONE = "tombstone: agreement versions are never deleted; end one with a new version's effective_to"


def agreement_settings(settings: LedgerSettings) -> LedgerSettings:
    """The billable consumer's settings turned to the agreements topic (every partition of it)."""
    return dataclasses.replace(
        settings, topic=settings.agreements_topic, dlq_topic=settings.agreements_dlq_topic, partitions=None
    )


def decode(value: bytes | None) -> Agreement:
    """The agreement in a record's value, judged as the processor judges it; Rejected names the problem."""
    if value is None:
        raise Rejected(TOMBSTONE)
    try:
        envelope = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise Rejected(f"not JSON: {exc}") from exc
    if not isinstance(envelope, dict) or not isinstance(envelope.get("data"), dict):
        raise Rejected("data: an agreement envelope holds its agreement as an object in `data`")
    if has_nul(envelope["data"]):
        raise Rejected("data: strings must not contain NUL characters")
    try:
        return agreement_from_cloudevent(envelope)
    except ValidationFailed as exc:
        reasons = (f"data.{p.get('field')}: {p.get('reason')}" for p in exc.problems[:5])
        raise Rejected("; ".join(reasons)) from exc


class AgreementConsumer(LedgerConsumer):
    """The ledger's consumer of the agreements topic; `run` until stopped, or `drain` (tests)."""

    kind = "agreement"
    # Every instance reads every partition (no group, no epochs): agreements are few and compacted, each
    # instance then knows them as soon as it starts, and the store keeps each record once whoever writes it.
    splits = False

    def __init__(
        self, settings: LedgerSettings, metrics: LedgerMetrics | None = None, database_url: str | None = None
    ) -> None:
        super().__init__(agreement_settings(settings), metrics, database_url)

    def _prepare(self, conn: psycopg.Connection) -> None:
        """Nothing to set up: agreements are few, so each goes in as its own INSERT."""

    def _before_write(self, rows: Sequence[Any]) -> None:
        """Nothing before the transaction: the agreements table is not partitioned."""

    def _decode(self, records: Sequence[Any]) -> tuple[list[AgreementRow], list[tuple[Any, str]]]:
        rows: list[AgreementRow] = []
        dead: list[tuple[Any, str]] = []
        for record in records:
            try:
                rows.append((decode(record.value), record.topic, record.partition, record.offset))
            except Rejected as exc:
                log.warning("dead letter %s/%d@%d: %s", record.topic, record.partition, record.offset, exc)
                dead.append((record, str(exc)[:1000]))
        return rows, dead

    def _insert(self, cursor: psycopg.Cursor[Any], rows: Sequence[AgreementRow]) -> int:
        """Store the batch's new versions in licensee order (one lock order for every writer), each
        licensee's in offset order; return how many were new."""
        inserted = 0
        for agreement, topic, partition, offset in sorted(rows, key=lambda r: (r[0].licensee_id, r[2], r[3])):
            new = insert_agreement(cursor, agreement, (topic, partition, offset))
            if new:
                log.info(
                    "agreement %s from %s stored (%s/%d@%d)",
                    agreement.licensee_id, agreement.effective_from.isoformat(), topic, partition, offset,
                )  # fmt: skip
            inserted += new
        return inserted

    def _lag(self) -> Gauge:
        return self.metrics.agreements_lag
