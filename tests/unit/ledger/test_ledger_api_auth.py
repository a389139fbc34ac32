"""The finance/audit API refuses before touching the database: 401, 403, 400 naming the parameter."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from starlette.testclient import TestClient

from services.core.clock import FixedClock
from services.core.tokens import InMemoryTokenStore
from services.ledger.adapters.http.api import create_app
from services.ledger.settings import LedgerSettings

BASE = "/v1/licensees/omnisoft"
ROUTES = [("GET", BASE + "/ledger"), ("GET", BASE + "/usage-report"), ("GET", BASE + "/invoices/2026-10"),
          ("POST", BASE + "/invoices/2026-10"), ("POST", BASE + "/adjustments")]  # fmt: skip
WRITES = {("POST", BASE + "/invoices/2026-10"), ("POST", BASE + "/adjustments")}


@contextmanager
def no_database() -> Iterator[psycopg.Connection]:
    raise psycopg.OperationalError("no database in unit tests")
    yield  # pragma: no cover


@pytest.fixture
def tokens() -> InMemoryTokenStore:
    return InMemoryTokenStore()


@pytest.fixture
def client(tokens: InMemoryTokenStore) -> TestClient:
    settings = LedgerSettings(kafka_bootstrap="k:1", app_database_url="postgresql://x", tokens_file=Path("t"))
    return TestClient(
        create_app(settings, no_database, tokens, FixedClock(datetime(2026, 11, 5, tzinfo=UTC)))
    )


@pytest.mark.parametrize(("method", "path"), ROUTES)
@pytest.mark.parametrize("header", [None, "Bearer", "Basic abc", "Bearer tg_nope_nope"])
def test_every_route_answers_401_without_a_valid_bearer_token(
    client: TestClient, method: str, path: str, header: str | None
) -> None:
    answer = client.request(method, path, headers={"Authorization": header} if header else {})
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"].startswith("Bearer")
    assert answer.json()["errors"][0]["field"] == "Authorization"


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_every_route_answers_403_to_a_role_that_may_not(
    client: TestClient, tokens: InMemoryTokenStore, method: str, path: str
) -> None:
    role = "auditor" if (method, path) in WRITES else "ingest"
    token = tokens.create("someone", role)
    answer = client.request(method, path, headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 403


@pytest.mark.parametrize(("method", "path", "field"), [
    ("GET", BASE + "/ledger?from=yesterday", "from"),
    ("GET", BASE + "/ledger?to=2026-10-01T00:00:00", "to"),
    ("GET", BASE + "/ledger?limit=0", "limit"),
    ("GET", BASE + "/ledger?form=2026-10-01", "form"),
    ("GET", BASE + "/ledger?from=2026-10-01&from=2026-10-02", "from"),
    ("GET", BASE + "/usage-report?from=2026-11-01&to=2026-10-01", "to"),
    ("GET", BASE + "/invoices/2026-13", "month"),
    ("GET", BASE + "/invoices/latest", "month"),
    ("GET", "/v1/licensees/-bad/ledger", "licensee_id"),
    ("GET", "/v1/licensees/a%20b/ledger", "licensee_id"),
    ("POST", BASE + "/invoices/10-2026", "month"),
    ("POST", BASE + "/adjustments", "body"),
])  # fmt: skip
def test_a_bad_parameter_is_a_400_naming_it_never_a_500(
    client: TestClient, tokens: InMemoryTokenStore, method: str, path: str, field: str
) -> None:
    token = tokens.create("finance", "finance")
    answer = client.request(method, path, headers={"Authorization": f"Bearer {token}"}, content=b"not json")
    assert answer.status_code == 400, answer.text
    assert answer.json() == {"errors": [{"field": field, "reason": answer.json()["errors"][0]["reason"]}]}


def test_a_bad_adjustment_body_names_the_field(client: TestClient, tokens: InMemoryTokenStore) -> None:
    token = tokens.create("finance", "finance")
    answer = client.post(BASE + "/adjustments", headers={"Authorization": f"Bearer {token}"},
                         json={"amount_minor": 0, "reason": "x",
                             "reference": "INV-omnisoft-2026-10"})  # fmt: skip
    assert (answer.status_code, answer.json()["errors"][0]["field"]) == (400, "amount_minor")


def test_a_month_not_yet_due_is_refused_with_409_before_any_query(
    client: TestClient, tokens: InMemoryTokenStore
) -> None:
    token = tokens.create("finance", "finance")
    answer = client.post(BASE + "/invoices/2026-11", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 409
    assert "2026-12-04" in answer.json()["errors"][0]["reason"]


def test_an_unreachable_database_is_a_503_and_not_ready(
    client: TestClient, tokens: InMemoryTokenStore
) -> None:
    token = tokens.create("auditor", "auditor")
    answer = client.get(BASE + "/ledger", headers={"Authorization": f"Bearer {token}"})
    assert (answer.status_code, answer.headers["retry-after"]) == (503, "5")
    assert client.get("/readyz").status_code == 503
    assert client.get("/healthz").status_code == 200
