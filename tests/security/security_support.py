"""Shared by the security tier: how to reach the services under attack and check nothing was stored."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import psycopg
from kafka import KafkaConsumer, TopicPartition
from psycopg import sql

LICENSEE = "omnisoft"
MONTH = "2026-10"
LEDGER_TABLES = ("agreements", "usage_entries", "invoices", "invoice_lines", "ledger_entries", "dead_letters")


def with_search_path(url: str, schema: str) -> str:
    """`url` with `schema` first on the search path (libpq `options`)."""
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options={quote(f'-csearch_path={schema}')}"


@dataclass
class Targets:
    """The running services, how to reach them, and what a test needs to check nothing was stored."""

    ingest_url: str
    ledger_url: str
    tokens: dict[str, str]
    owner_url: str
    app_url: str
    kafka_bootstrap: str
    ingest_topic: str
    logs: list[Path]

    def bearer(self, role: str) -> dict[str, str]:
        """The Authorization header of `role`'s token."""
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def topic_end(self) -> int:
        """Sum of the ingest topic's end offsets: grows by one per record stored."""
        consumer = KafkaConsumer(bootstrap_servers=self.kafka_bootstrap, group_id=None)
        try:
            parts = [TopicPartition(self.ingest_topic, p)
                     for p in consumer.partitions_for_topic(self.ingest_topic) or ()]  # fmt: skip
            return sum(consumer.end_offsets(parts).values())
        finally:
            consumer.close()

    def read_topic(self, start: int) -> list[bytes]:
        """The values of the records past the first `start` (one partition's worth is enough here)."""
        consumer = KafkaConsumer(bootstrap_servers=self.kafka_bootstrap, group_id=None,
                                 enable_auto_commit=False)  # fmt: skip
        try:
            parts = [TopicPartition(self.ingest_topic, p)
                     for p in consumer.partitions_for_topic(self.ingest_topic) or ()]  # fmt: skip
            consumer.assign(parts)
            consumer.seek_to_beginning(*parts)
            values: list[bytes] = []
            deadline = time.monotonic() + 20
            expected = self.topic_end()
            while len(values) < expected and time.monotonic() < deadline:
                for batch in consumer.poll(timeout_ms=500).values():
                    values.extend(r.value for r in batch)
            return values
        finally:
            consumer.close()

    def table_counts(self) -> dict[str, int]:
        """Rows per ledger table, read as the owner."""
        with psycopg.connect(self.owner_url) as conn:
            return {
                t: conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(t))).fetchone()[0]  # type: ignore[index]
                for t in LEDGER_TABLES
            }


@dataclass
class Spawned:
    """A service process started by a test with an environment of its own."""

    process: subprocess.Popen[bytes]
    url: str
    log_path: Path


def call(http: httpx.Client, targets: Targets, method: str, path: str, role: str = "finance",
         **kwargs: Any) -> httpx.Response:  # fmt: skip
    """A request to the ledger with `role`'s token."""
    headers = {**targets.bearer(role), **kwargs.pop("headers", {})}
    return http.request(method, targets.ledger_url + path, headers=headers, **kwargs)


def assert_refused(answer: httpx.Response, status: int, field: str) -> None:
    """`answer` has `status` and its `errors` list names `field`."""
    assert answer.status_code == status, answer.text[:500]
    assert field in {e["field"] for e in answer.json()["errors"]}, answer.text[:500]


def adjustment(invoice: str, **fields: Any) -> dict[str, Any]:
    """A valid adjustment body correcting `invoice`, with `fields` changed."""
    return {"amount_minor": -500, "reason": "goodwill credit", "reference": invoice, **fields}
