"""Which partitions one ledger consumer writes, and the fence that keeps a lost partition from being written.

Delivery guarantee (with adapters/kafka/consumer.py):
- PostgreSQL's `consumer_offsets` is the only source of truth for positions. Kafka's group only says who
  should read what; nothing is committed to Kafka, so the group's own offsets never decide a position.
- Group mode (the default for billable usage and alerts): on each assignment the instance claims its new
  partitions in one transaction, `epoch + 1` and `owner` on each row (a missing row is made at offset 0),
  and seeks them to the stored next offsets. Every batch locks its partitions' rows first (FOR UPDATE) and
  goes on only while they still hold the epochs it claimed, then writes rows and offsets in the same
  transaction. An instance that lost a partition (killed, or a zombie past its session timeout) therefore
  either commits its batch before the new owner's claim reads the offsets (the claim waits for the lock),
  or has the batch refused (Fenced) and rolled back: never a write after the new owner's claim.
- Static mode (TOLLGATE_LEDGER_PARTITIONS, and the agreements consumer, which every instance runs on every
  partition): positions as before, no epochs; two instances on one partition do the work twice, and the
  stores' own idempotence (each usage_id, alert_id, agreement record once) keeps the effect exactly once.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Collection, Mapping
from typing import Any

import psycopg

from services.ledger.errors import Fenced

# Rows are claimed in partition order, as batches lock them, so claims and batches cannot deadlock.
CLAIM = """INSERT INTO consumer_offsets AS c
        (consumer_group, topic, kafka_partition, next_offset, epoch, owner)
    SELECT %s, %s, p, 0, 1, %s FROM unnest(%s::int[]) AS t(p) ORDER BY p
    ON CONFLICT (consumer_group, topic, kafka_partition) DO UPDATE
    SET epoch = c.epoch + 1, owner = EXCLUDED.owner, updated_at = now()
    RETURNING kafka_partition, next_offset, epoch"""
GUARD = """SELECT c.kafka_partition FROM consumer_offsets c
    JOIN unnest(%s::int[], %s::bigint[]) AS t(p, e) ON c.kafka_partition = t.p AND c.epoch = t.e
    WHERE c.consumer_group = %s AND c.topic = %s ORDER BY c.kafka_partition FOR UPDATE OF c"""
STORE_FENCED = """UPDATE consumer_offsets c SET next_offset = GREATEST(c.next_offset, t.o), updated_at = now()
    FROM unnest(%s::int[], %s::bigint[], %s::bigint[]) AS t(p, o, e)
    WHERE c.consumer_group = %s AND c.topic = %s AND c.kafka_partition = t.p AND c.epoch = t.e"""
UPSERT_OFFSETS = """INSERT INTO consumer_offsets (consumer_group, topic, kafka_partition, next_offset)
    SELECT %s, %s, p, o FROM unnest(%s::int[], %s::bigint[]) AS t(p, o)
    ON CONFLICT (consumer_group, topic, kafka_partition) DO UPDATE
    SET next_offset = GREATEST(consumer_offsets.next_offset, EXCLUDED.next_offset), updated_at = now()"""
SELECT_OFFSETS = """SELECT kafka_partition, next_offset, epoch FROM consumer_offsets
    WHERE consumer_group = %s AND topic = %s"""


def instance_name() -> str:
    """Who claims: host (the pod's name on Kubernetes), process id, and a nonce per consumer."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Ownership:
    """The partitions a consumer may write: all it was given (static), or those it claimed (group)."""

    def __init__(self, group: str, topic: str, *, fenced: bool) -> None:
        self.group = group
        self.topic = topic
        self.fenced = fenced
        self.owner = instance_name()
        self.epochs: dict[int, int] = {}  # group mode: partition -> the epoch this instance claimed

    def owned(self, assigned: Collection[int]) -> list[int]:
        """Of the Kafka assignment, the partitions this consumer may write now."""
        return sorted(assigned) if not self.fenced else sorted(p for p in assigned if p in self.epochs)

    def claim(self, conn: psycopg.Connection, partitions: Collection[int]) -> dict[int, int]:
        """Take the partitions over (epoch + 1) in one transaction; return their stored next offsets."""
        with conn.transaction():
            claimed = conn.execute(CLAIM, (self.group, self.topic, self.owner, sorted(partitions))).fetchall()
        self.epochs.update({partition: epoch for partition, _, epoch in claimed})
        return {partition: offset for partition, offset, _ in claimed}

    def stored(self, conn: psycopg.Connection, assigned: Collection[int]) -> dict[int, int]:
        """The stored next offsets to seek to; in group mode a partition whose epoch moved is lost here."""
        with conn.transaction():
            rows = conn.execute(SELECT_OFFSETS, (self.group, self.topic)).fetchall()
        if not self.fenced:
            return {p: offset for p, offset, _ in rows if p in assigned}
        moved = frozenset(p for p, _, epoch in rows if p in self.epochs and epoch != self.epochs[p])
        self.lose(moved)
        return {p: offset for p, offset, _ in rows if p in self.epochs}

    def guard(self, cursor: psycopg.Cursor[Any], partitions: Collection[int]) -> None:
        """First in a batch's transaction: lock the partitions' rows; Fenced when one was claimed since."""
        if not self.fenced:
            return
        wanted = sorted(partitions)
        if any(p not in self.epochs for p in wanted):
            raise Fenced(frozenset(p for p in wanted if p not in self.epochs))
        epochs = [self.epochs[p] for p in wanted]
        held = {row[0] for row in cursor.execute(GUARD, (wanted, epochs, self.group, self.topic))}
        if len(held) != len(wanted):
            raise Fenced(frozenset(wanted) - held)

    def store(self, cursor: psycopg.Cursor[Any], ends: Mapping[int, int]) -> None:
        """Last in a batch's transaction: the partitions' next offsets, only ever forward."""
        parts, offsets = list(ends), list(ends.values())
        if not self.fenced:
            cursor.execute(UPSERT_OFFSETS, (self.group, self.topic, parts, offsets))
            return
        epochs = [self.epochs[p] for p in parts]
        cursor.execute(STORE_FENCED, (parts, offsets, epochs, self.group, self.topic))
        if cursor.rowcount != len(parts):  # cannot happen under GUARD's locks; refused all the same
            raise Fenced(frozenset(parts))

    def lose(self, partitions: Collection[int]) -> None:
        """Forget partitions revoked by the group or claimed by another instance."""
        for partition in partitions:
            self.epochs.pop(partition, None)
