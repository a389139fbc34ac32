"""Agreements in PostgreSQL: versioned and append-only; readers pick the version in force.

The ledger's agreements consumer (adapters/kafka/agreement_consumer.py) is the one writer in service;
`wait_consumed` tells a caller that published agreements when the ledger holds them.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson
import psycopg
from psycopg.types.json import Jsonb

from services.core.agreements import Agreement, parse_agreement
from services.ledger.domain.pricing import agreement_at, in_force
from services.ledger.errors import LedgerError

log = logging.getLogger(__name__)


def digest(agreement: Agreement) -> str:
    """A stable fingerprint of an agreement's document: the same document is the same version."""
    return hashlib.sha256(orjson.dumps(agreement.raw, option=orjson.OPT_SORT_KEYS)).hexdigest()


Executor = psycopg.Connection[Any] | psycopg.Cursor[Any]  # what runs the statements
Source = tuple[str, int, int]  # the Kafka record a version came in: topic, partition, offset

# Under the licensee's chain lock (the one the hash-chain trigger of migration 0005 takes, so it is held
# already when the trigger links the row): a concurrent writer of the same licensee waits for our commit.
LOCK_LICENSEE = "SELECT pg_advisory_xact_lock(hashtext('agreements'), hashtext(%s))"
# A new row unless this record is stored, or the document is the version in force for its start
# (migration 0009). No ON CONFLICT: the chain trigger must never link a row that is then skipped.
INSERT_VERSION = """INSERT INTO agreements (licensee_id, effective_from, effective_to, document, digest,
        kafka_topic, kafka_partition, kafka_offset, parent_id, kind)
    SELECT %(licensee)s::text, %(start)s::timestamptz, %(end)s::timestamptz, %(document)s, %(digest)s::text,
        %(topic)s::text, %(partition)s::integer, %(offset)s::bigint, %(parent)s::text, %(kind)s::text
    WHERE NOT EXISTS (SELECT 1 FROM agreements WHERE kafka_topic = %(topic)s::text
            AND kafka_partition = %(partition)s::integer AND kafka_offset = %(offset)s::bigint)
        AND (SELECT digest FROM agreements WHERE licensee_id = %(licensee)s::text
            AND effective_from = %(start)s::timestamptz ORDER BY agreement_version DESC LIMIT 1)
            IS DISTINCT FROM %(digest)s::text"""


def save_agreements(database_url: str, agreements: Sequence[Agreement]) -> int:
    """Store agreements straight, as the agreements consumer would (tests, bench); return how many are new."""
    try:
        with psycopg.connect(database_url) as conn, conn.transaction():
            return sum(insert_agreement(conn, agreement) for agreement in agreements)
    except psycopg.Error as exc:
        raise LedgerError(f"storing agreements failed: {exc}") from exc


def insert_agreement(conn: Executor, agreement: Agreement, source: Source | None = None) -> int:
    """Insert one version inside the open transaction; 1 if it was new, 0 if already stored or in force."""
    conn.execute(LOCK_LICENSEE, (agreement.licensee_id,))
    topic, partition, offset = source or (None, None, None)
    cursor = conn.execute(
        INSERT_VERSION,
        {
            "licensee": agreement.licensee_id,
            "start": agreement.effective_from,
            "end": agreement.effective_to,
            "document": Jsonb(agreement.raw),
            "digest": digest(agreement),
            "topic": topic,
            "partition": partition,
            "offset": offset,
            "parent": agreement.parent_id,
            "kind": agreement.kind,
        },
    )
    return cursor.rowcount


def versions(conn: psycopg.Connection, licensee_id: str) -> list[Agreement]:
    """Every stored version of a licensee's agreements, in load order."""
    rows = conn.execute(
        "SELECT document FROM agreements WHERE licensee_id = %s ORDER BY agreement_version", (licensee_id,)
    ).fetchall()
    return [parse_agreement(row[0]) for row in rows]


def agreements_in_force(conn: psycopg.Connection, licensee_id: str) -> list[Agreement]:
    """The version in force of each of a licensee's agreements, by start date."""
    return in_force(versions(conn, licensee_id))


def agreement_active_at(conn: psycopg.Connection, licensee_id: str, at: datetime) -> Agreement | None:
    """The agreement in force for a licensee at instant `at`, if any."""
    return agreement_at(agreements_in_force(conn, licensee_id), at)


def licensees(conn: psycopg.Connection) -> list[str]:
    """Every licensee with a stored agreement."""
    return [row[0] for row in conn.execute("SELECT DISTINCT licensee_id FROM agreements ORDER BY 1")]


SELECT_CONSUMED = (
    "SELECT kafka_partition, max(next_offset) FROM consumer_offsets WHERE topic = %s GROUP BY kafka_partition"
)


def wait_consumed(database_url: str, topic: str, ends: Mapping[int, int], timeout: float = 60.0) -> None:
    """Wait until the ledger stored its position on `topic` at or past `ends` (partition: next offset),
    so every agreement published before is in PostgreSQL; LedgerError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    consumed: dict[int, int] = {}
    while True:
        try:
            with psycopg.connect(database_url, connect_timeout=5) as conn:
                consumed = dict(conn.execute(SELECT_CONSUMED, (topic,)).fetchall())
        except psycopg.Error as exc:
            log.debug("reading the ledger's position on %s failed: %s", topic, exc)
        if all(consumed.get(partition, 0) >= end for partition, end in ends.items()):
            return
        if time.monotonic() > deadline:
            where = f"{topic} to {dict(ends)} in {timeout:.0f}s (at {consumed})"
            raise LedgerError(f"the ledger has not read {where}")
        pause.wait(0.1)
