"""Where a ledger consumer reads: the positions stored in PostgreSQL, and the group's moves applied to them.

A mixin of consumer_loop.py. Delivery guarantee: a partition is read only from the next
offset stored in `consumer_offsets`, and in group mode only after this instance claimed it there
(adapters/postgres/ownership.py); a revoked or lost partition is paused and forgotten before the next batch,
so no batch writes it again. Rebalance callbacks run only inside the fetcher's calls and only note the moves;
they are applied after the batch in flight (write_ahead.py) settled. That batch, if its partition was
claimed meanwhile, is refused by the fence or commits before the claim, as a stalled instance's would.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

import psycopg
from prometheus_client import Gauge

from services.ledger.adapters.kafka.fetch import Fetcher, KafkaFailure
from services.ledger.adapters.postgres.ownership import Ownership
from services.ledger.settings import LedgerSettings

log = logging.getLogger("services.ledger.adapters.kafka.consumer_loop")


class Positioning:
    """Positions, claims and lag of one consumer; the consumer loop sets the attributes below."""

    kind: str
    settings: LedgerSettings
    grouped: bool
    ownership: Ownership
    positions: dict[int, int]
    _conn: psycopg.Connection | None
    _kafka: Fetcher | None
    _pending: set[int]

    def _lag(self) -> Gauge:
        raise NotImplementedError

    def _seek(self, kafka: Fetcher) -> None:
        """Seek every owned partition to the offset PostgreSQL says comes next: the only source of truth."""
        assert self._conn is not None  # noqa: S101
        self.positions = self.ownership.stored(self._conn, kafka.partitions)
        owned = self.ownership.owned(kafka.partitions)
        kafka.seek(self.positions, owned)
        kafka.pause([p for p in kafka.partitions if p not in owned])  # lost ones wait for a new assignment
        log.info("ledger %s consumer positioned at %s (others from the beginning)", self.kind, self.positions)

    def _rebalanced(self, kafka: Fetcher, records: list[Any]) -> list[Any]:
        """Apply the group's moves: drop revoked partitions, claim and seek new ones before reading them.

        Records of a partition claimed now are dropped (aiokafka drops them too): they are read again from
        the stored offset the claim returned.
        """
        assigned, revoked = kafka.changes()
        self._lose(revoked)
        self._pending = (self._pending - revoked) | assigned
        claimed = frozenset(self._pending)
        if self._pending:
            assert self._conn is not None  # noqa: S101 - _ensure_ready connected
            stored = self.ownership.claim(self._conn, self._pending)
            kafka.seek(stored, sorted(self._pending))
            kafka.pause(sorted(self._pending), paused=False)
            self.positions.update(stored)
            log.info(
                "ledger %s consumer %s claimed %s of %s at %s; it owns %s", self.kind, self.ownership.owner,
                sorted(self._pending), self.settings.topic, stored, self.ownership.owned(kafka.partitions),
            )  # fmt: skip
            self._pending = set()
        owned = set(self.ownership.epochs) - claimed
        return [record for record in records if record.partition in owned]

    def _lose(self, partitions: set[int] | frozenset[int]) -> None:
        """Stop writing the partitions (revoked, or claimed by another instance): forget them, pause them."""
        if not partitions:
            return
        self.ownership.lose(partitions)
        for partition in partitions:
            self.positions.pop(partition, None)
            with contextlib.suppress(KeyError):  # never reported yet
                self._lag().remove(str(partition))  # its new owner reports its lag
        if self._kafka is not None:
            self._kafka.pause(sorted(partitions))

    def _past_markers(self, kafka: Fetcher, ends: dict[int, int], in_flight: Mapping[int, int]) -> None:
        """Move `ends` to the consumer's positions where they passed transaction markers (the stored
        positions and those of the write in flight, `in_flight`, already count).

        The processor writes in Kafka transactions: each commit leaves a marker that takes an offset and
        is never returned as a record. Storing the position past it keeps the stored offsets equal to the
        end of the topic once everything is read (lag 0, `drain` returns).
        """
        for partition in self.ownership.owned(kafka.partitions):
            known = max(self.positions.get(partition, -1), in_flight.get(partition, -1))
            if known < 0 and partition not in ends:
                continue  # never read yet: its position is not resolved
            position = kafka.position(partition)
            if position > max(ends.get(partition, 0), known):
                ends[partition] = position

    def _report_lag(self, kafka: Fetcher) -> None:
        for partition in self.ownership.owned(kafka.partitions):
            highwater = kafka.highwater(partition)
            if highwater is not None:
                self._lag().labels(str(partition)).set(max(0, highwater - self.positions.get(partition, 0)))

    def _wait(self, seconds: float, stop: threading.Event) -> None:
        """Back off; a group member keeps heartbeating meanwhile, so an outage moves no partition."""
        deadline = time.monotonic() + seconds
        while not stop.is_set() and (left := deadline - time.monotonic()) > 0:
            if self._kafka is None or not self.grouped:
                stop.wait(left)
                return
            try:
                self._kafka.idle(min(left, 0.5))
            except (KafkaFailure, OSError):
                stop.wait(min(left, 0.5))
