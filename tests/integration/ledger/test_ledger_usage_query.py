"""`GET /v1/usage` on PostgreSQL: sums per window and dimension, exact to the call, JSON or CSV, bounded."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from ledger_support import LedgerDb, hour_bucket, insert_usage
from starlette.testclient import TestClient

from services.core.clock import FixedClock
from services.core.events import ApiCall
from services.core.tokens import InMemoryTokenStore
from services.ledger.adapters.http.api import create_app
from services.ledger.adapters.postgres.db import url_connector
from services.ledger.settings import LedgerSettings

pytestmark = pytest.mark.integration

OCT1 = datetime(2026, 10, 1, tzinfo=UTC)
# (licensee, app, org, org_type, event time, records)
CALLS = [
    ("acme", "a1", "c1", "commercial", OCT1 + timedelta(minutes=10), 1),
    ("acme", "a1", "c1", "commercial", OCT1 + timedelta(minutes=50), 2),
    ("acme", "a2", "g1", "government", OCT1 + timedelta(hours=23, minutes=59, seconds=59), 4),
    ("acme", "a1", "g1", "government", OCT1 + timedelta(days=1), 8),
    ("acme", "a2", "c1", "commercial", OCT1 + timedelta(days=31), 16),
    ("other", "o1", "c9", "commercial", OCT1 + timedelta(minutes=5), 32),
]


@pytest.fixture
def client(ledger_db: LedgerDb) -> TestClient:
    calls = [ApiCall(f"q-{i}", "gw-q", at, licensee, app, "/x", "GET", 200, records, 10, org, org_type)
             for i, (licensee, app, org, org_type, at, records) in enumerate(CALLS)]  # fmt: skip
    insert_usage(ledger_db, [hour_bucket(call) for call in calls])
    tokens = InMemoryTokenStore()
    settings = LedgerSettings("127.0.0.1:9", ledger_db.app_url, Path("/nonexistent"))
    clock = FixedClock(OCT1 + timedelta(days=60))
    app = create_app(settings, url_connector(ledger_db.app_url), tokens, clock)
    test_client = TestClient(app)
    test_client.headers["Authorization"] = f"Bearer {tokens.create('q-auditor', 'auditor')}"
    test_client.headers["X-Finance"] = f"Bearer {tokens.create('q-finance', 'finance')}"
    test_client.headers["X-Ingest"] = f"Bearer {tokens.create('q-ingest', 'ingest')}"
    return test_client


def usage(client: TestClient, **query: str) -> dict[str, Any]:
    answer = client.get("/v1/usage", params=query)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def sums(body: dict[str, Any], *keys: str) -> list[tuple[Any, ...]]:
    return [(*(row[k] for k in keys), row["calls"], row["records"]) for row in body["rows"]]


def test_a_day_window_grouped_by_app_sums_each_call_in_its_own_utc_day(client: TestClient) -> None:
    body = usage(client, licensee="acme", **{"from": "2026-10-01", "to": "2026-10-03"}, window="day",
                 group_by="app")  # fmt: skip
    assert sums(body, "window_start", "app_id") == [
        ("2026-10-01T00:00:00Z", "a1", 2, 3), ("2026-10-01T00:00:00Z", "a2", 1, 4),
        ("2026-10-02T00:00:00Z", "a1", 1, 8)]  # fmt: skip
    assert body["truncated"] is False


def test_from_and_to_cut_exactly_at_the_call_not_at_the_hour_bucket(client: TestClient) -> None:
    body = usage(client, licensee="acme", **{"from": "2026-10-01T00:30:00Z", "to": "2026-10-02T00:00:00Z"})
    window = ("2026-10-01T00:30:00Z", "2026-10-02T00:00:00Z")
    assert sums(body, "window_start", "window_end") == [(*window, 2, 6)]


def test_a_month_window_is_clipped_to_the_range_and_groups_by_org_type(client: TestClient) -> None:
    body = usage(client, licensee="acme", **{"from": "2026-10-15", "to": "2026-11-15"}, window="month",
                 group_by="org_type")  # fmt: skip
    assert sums(body, "window_start", "window_end", "org_type") == [
        ("2026-11-01T00:00:00Z", "2026-11-15T00:00:00Z", "commercial", 1, 16)]  # fmt: skip


def test_without_a_licensee_every_licensee_gets_its_own_rows(client: TestClient) -> None:
    body = usage(client, **{"from": "2026-10-01", "to": "2026-10-02"}, group_by="org")
    assert sums(body, "licensee_id", "org_id") == [
        ("acme", "c1", 2, 3), ("acme", "g1", 1, 4), ("other", "c9", 1, 32)]  # fmt: skip


def test_the_limit_bounds_the_rows_and_says_it_cut_them(client: TestClient) -> None:
    body = usage(client, **{"from": "2026-10", "to": "2026-12"}, window="hour", limit="2")
    assert (len(body["rows"]), body["truncated"]) == (2, True)


def test_finance_reads_the_same_rows_as_csv(client: TestClient) -> None:
    headers = {"Authorization": client.headers["X-Finance"], "Accept": "text/csv"}
    query = {"licensee": "acme", "from": "2026-10", "to": "2026-12", "window": "month", "group_by": "app"}
    answer = client.get("/v1/usage", params=query, headers=headers)
    assert answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert list(rows[0]) == ["licensee_id", "window_start", "window_end", "app_id", "calls", "records"]
    assert [(r["window_start"][:7], r["app_id"], r["calls"], r["records"]) for r in rows] == [
        ("2026-10", "a1", "3", "11"), ("2026-10", "a2", "1", "4"), ("2026-11", "a2", "1", "16")]  # fmt: skip


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"to": "2026-11"}, "from"),
        ({"from": "2026-10", "to": "2026-11", "window": "week"}, "window"),
        ({"from": "2026-10", "to": "2026-11", "group_by": "app,colour"}, "group_by"),
        ({"from": "2026-10", "to": "2026-11", "licence": "acme"}, "licence"),
    ],
)
def test_a_bad_parameter_is_a_400_naming_it(client: TestClient, query: dict[str, str], field: str) -> None:
    answer = client.get("/v1/usage", params=query)
    assert (answer.status_code, answer.json()["errors"][0]["field"]) == (400, field)


def test_an_ingest_token_may_not_query_usage(client: TestClient) -> None:
    ingest = {"Authorization": client.headers["X-Ingest"]}
    answer = client.get("/v1/usage?from=2026-10&to=2026-11", headers=ingest)
    assert answer.status_code == 403
