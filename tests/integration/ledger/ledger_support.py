"""Helpers for the ledger's integration tests: isolated schemas, billable messages, polling."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
from kafka import KafkaProducer
from psycopg import sql

from services.core.events import ApiCall, UsageRecorded, dumps
from services.demo.scenario import demo_calls
from services.ledger.adapters.postgres.migrate import apply_migrations
from services.ledger.domain.codec import USAGE_COLUMNS, to_row
from services.ledger.settings import LedgerSettings, role_of
from services.stack.ports import free_ports


@dataclass(frozen=True)
class LedgerDb:
    """One isolated ledger schema: the owner's and the service role's URLs both point at it."""

    schema: str
    owner_url: str
    app_url: str

    def scalar(self, query: str, params: tuple[Any, ...] = ()) -> Any:
        """The first column of the first row, as the owner."""
        with psycopg.connect(self.owner_url) as conn:
            row = conn.execute(query, params).fetchone()  # type: ignore[arg-type]
        return row[0] if row else None

    def rows(self, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """All rows, as the owner."""
        with psycopg.connect(self.owner_url) as conn:
            return conn.execute(query, params).fetchall()  # type: ignore[arg-type]

    def snapshot(self) -> dict[str, Any]:
        """Everything a replay must leave unchanged."""
        return {
            "usage": self.rows("SELECT usage_id, calls, records FROM usage_entries ORDER BY usage_id"),
            "ledger": self.rows(
                "SELECT entry_id, kind, amount_minor, reference FROM ledger_entries ORDER BY 1"
            ),
            "invoices": self.rows("SELECT invoice_id, total_minor FROM invoices ORDER BY 1"),
        }


def with_schema(url: str, schema: str) -> str:
    """`url` with the schema first on the search path (libpq `options`)."""
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options={quote(f'-csearch_path={schema}')}"


@contextmanager
def ledger_schema(owner_url: str, app_url: str, label: str = "t") -> Iterator[LedgerDb]:
    """A fresh schema with every migration applied; dropped afterwards."""
    schema = f"ledger_{re.sub(r'[^a-z0-9]', '', label.lower())[:20]}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(owner_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    db = LedgerDb(schema, with_schema(owner_url, schema), with_schema(app_url, schema))
    try:
        apply_migrations(db.owner_url, role_of(app_url))
        yield db
    finally:
        with psycopg.connect(owner_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


def hour_bucket(call: ApiCall) -> UsageRecorded:
    """The processor's billable delta of one counted call: its UTC hour bucket."""
    start = call.time.replace(minute=0, second=0, microsecond=0)
    return UsageRecorded.for_call(call, start, start + timedelta(hours=1))


def demo_billables() -> list[UsageRecorded]:
    """One billable delta per call of the demo scenario."""
    return [hour_bucket(call) for call in demo_calls()]


def synthetic_billables(count: int, licensee: str = "bench", start_index: int = 0) -> list[UsageRecorded]:
    """`count` distinct billable deltas in September 2026."""
    calls = []
    for i in range(start_index, start_index + count):
        moment = _SEPT + timedelta(seconds=i * 7 % (29 * 86400))
        calls.append(ApiCall(f"e-{i}", f"gw-{licensee}", moment, licensee, f"app-{i % 5}", "/x", "GET",
            200, 3,
                             100, f"org-{i % 7}", "commercial"))  # fmt: skip
    return [hour_bucket(call) for call in calls]


def produce(bootstrap: str, topic: str, usages: Iterable[UsageRecorded], raw: Iterable[bytes] = ()) -> int:
    """Publish billable events keyed by licensee (and raw values) with acks=all; return how many."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20, batch_size=256 * 1024)
    sent = 0
    try:
        for usage in usages:
            producer.send(topic, key=usage.licensee_id.encode(), value=dumps(usage.to_cloudevent()))
            sent += 1
        for value in raw:
            producer.send(topic, key=b"bad", value=value)
            sent += 1
        producer.flush(timeout=60)
    finally:
        producer.close()
    return sent


def insert_usage(db: LedgerDb, usages: Iterable[UsageRecorded]) -> int:
    """Store billable deltas straight into `usage_entries` (as the owner), as the consumer would."""
    rows = [to_row(usage, "test.direct", 0, offset) for offset, usage in enumerate(usages)]
    columns = ", ".join(USAGE_COLUMNS)
    marks = ", ".join(["%s"] * len(USAGE_COLUMNS))
    with psycopg.connect(db.owner_url) as conn, conn.cursor() as cursor:
        cursor.executemany(f"INSERT INTO usage_entries ({columns}) VALUES ({marks})", rows)  # noqa: S608
    return len(rows)


def settings_for(bootstrap: str, db: LedgerDb, topics: tuple[str, str], **overrides: Any) -> LedgerSettings:
    """Ledger settings for an in-process consumer on a test topic and its DLQ."""
    values: dict[str, Any] = {"kafka_bootstrap": bootstrap, "app_database_url": db.app_url,
                              "tokens_file": Path("/nonexistent"), "topic": topics[0], "dlq_topic": topics[1],
                              "backoff_max_seconds": 1.0, **overrides}  # fmt: skip
    return LedgerSettings(**values)


def serve_ledger(
    db: LedgerDb, bootstrap: str, topics: tuple[str, str], work: Path, log_name: str = "ledger.log",
    **env_overrides: str,
) -> subprocess.Popen[bytes]:
    """`tollgate serve ledger` as a process on the test topics (300-row batches), logging to `work`."""
    tokens = work / "tokens.json"
    tokens.write_text('{"tokens": []}')
    port, metrics = free_ports(2)
    env = {"PATH": os.environ.get("PATH", ""), "TOLLGATE_KAFKA_BOOTSTRAP": bootstrap,
           "TOLLGATE_APP_DATABASE_URL": db.app_url, "TOLLGATE_TOKENS_FILE": str(tokens),
           "TOLLGATE_LEDGER_PORT": str(port), "TOLLGATE_LEDGER_METRICS_PORT": str(metrics),
           "TOLLGATE_LEDGER_TOPIC": topics[0], "TOLLGATE_LEDGER_DLQ_TOPIC": topics[1],
           "TOLLGATE_LEDGER_BATCH_MAX": "300",
           "TOLLGATE_LEDGER_INVOICE_INTERVAL_SECONDS": "3600", **env_overrides}  # fmt: skip
    log = (work / log_name).open("ab")
    return subprocess.Popen([sys.executable, "-m", "services.cli", "serve", "ledger"], env=env,
                            stdout=log, stderr=subprocess.STDOUT)  # fmt: skip


def wait_for(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.2) -> None:
    """Poll until `check()` holds; fail naming `what`."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


_SEPT = demo_calls()[0].time.replace(month=9, day=1, hour=0, minute=0, second=0, microsecond=0)
