"""Every finance/audit route enforces roles, found by enumerating the app's routes: a route added
without `guard` fails here. Ingest's one write route too."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from starlette.routing import Route
from starlette.testclient import TestClient

from services.core.clock import FixedClock
from services.core.tokens import InMemoryTokenStore
from services.ingest.app import create_app as create_ingest
from services.ingest.publisher import InMemoryPublisher
from services.ingest.settings import IngestSettings
from services.ledger.adapters.http.api import create_app as create_ledger
from services.ledger.settings import LedgerSettings

# Routes that must answer without a token: probes and the API description, nothing else.
PUBLIC = {"/healthz", "/readyz", "/openapi.json"}
SAMPLE_PARAMS = {"licensee_id": "omnisoft", "month": "2026-10"}
# Required query parameters, so a request past the gate reaches the database (and gets its 503).
SAMPLE_QUERY = {"/v1/usage": "?from=2026-10&to=2026-11",
                "/v1/licensees/{licensee_id:path}/audit-report": "?from=2026-10&to=2026-11"}
TOKENS = InMemoryTokenStore()
TOKEN = {role: TOKENS.create(f"roles-{role}", role) for role in ("ingest", "finance", "auditor")}


@contextmanager
def no_database() -> Iterator[psycopg.Connection]:
    raise psycopg.OperationalError("no database here: auth must answer first")
    yield  # pragma: no cover


LEDGER = create_ledger(
    LedgerSettings(kafka_bootstrap="127.0.0.1:9", app_database_url="postgresql://x", tokens_file=Path("t")),
    no_database, TOKENS, FixedClock(datetime(2026, 11, 23, tzinfo=UTC)),
)  # fmt: skip
INGEST = create_ingest(IngestSettings("127.0.0.1:9", Path("t")), InMemoryPublisher(), TOKENS)


def endpoints(app: object) -> list[tuple[str, str]]:
    """(method, concrete path) of every route of a Starlette app, path parameters filled in."""
    found: list[tuple[str, str]] = []
    for route in app.routes:  # type: ignore[attr-defined]
        assert isinstance(route, Route), f"unexpected route type {route!r}: teach this test about it"
        path = re.sub(r"\{(\w+)(:\w+)?\}", lambda m: SAMPLE_PARAMS[m.group(1)], route.path)
        path += SAMPLE_QUERY.get(route.path, "")
        found.extend((method, path) for method in sorted(route.methods or {"GET"}) if method != "HEAD")
    return found


LEDGER_PROTECTED = [e for e in endpoints(LEDGER) if e[1] not in PUBLIC]
INGEST_PROTECTED = [e for e in endpoints(INGEST) if e[1] not in PUBLIC]


def test_the_route_tables_are_what_this_test_expects() -> None:
    assert {path for _, path in endpoints(LEDGER) if path in PUBLIC} == PUBLIC
    assert len(LEDGER_PROTECTED) == 10  # with GET /v1/licensees/{id}/alerts
    assert INGEST_PROTECTED == [("POST", "/v1/events")]


@pytest.mark.parametrize(("method", "path"), LEDGER_PROTECTED + INGEST_PROTECTED)
@pytest.mark.parametrize("authorization", [None, "Bearer", "Bearer tg_unknown_token", "Basic Zm9vOmJhcg=="])
def test_every_protected_route_answers_401_without_a_valid_token(
    method: str, path: str, authorization: str | None
) -> None:
    client = TestClient(LEDGER if (method, path) in LEDGER_PROTECTED else INGEST)
    answer = client.request(method, path, headers={"Authorization": authorization} if authorization else {})
    assert answer.status_code == 401, answer.text
    assert answer.headers["www-authenticate"].startswith("Bearer")
    assert answer.json()["errors"][0]["field"] == "Authorization"


@pytest.mark.parametrize(("method", "path"), LEDGER_PROTECTED)
def test_every_finance_route_answers_403_to_an_ingest_token(method: str, path: str) -> None:
    answer = TestClient(LEDGER).request(method, path, headers={"Authorization": f"Bearer {TOKEN['ingest']}"})
    assert answer.status_code == 403, answer.text


@pytest.mark.parametrize(("method", "path"), [e for e in LEDGER_PROTECTED if e[0] != "GET"])
def test_every_finance_write_answers_403_to_an_auditor(method: str, path: str) -> None:
    answer = TestClient(LEDGER).request(method, path, headers={"Authorization": f"Bearer {TOKEN['auditor']}"})
    assert answer.status_code == 403, answer.text


@pytest.mark.parametrize(("method", "path"), [e for e in LEDGER_PROTECTED if e[0] == "GET"])
@pytest.mark.parametrize("role", ["finance", "auditor"])
def test_every_finance_read_lets_finance_and_auditors_past_the_gate(
    method: str, path: str, role: str
) -> None:
    answer = TestClient(LEDGER).request(method, path, headers={"Authorization": f"Bearer {TOKEN[role]}"})
    assert answer.status_code == 503  # past auth, stopped only by the absent database


@pytest.mark.parametrize("role", ["finance", "auditor"])
def test_ingest_answers_403_to_a_finance_or_auditor_token(role: str) -> None:
    answer = TestClient(INGEST).post("/v1/events", headers={"Authorization": f"Bearer {TOKEN[role]}"})
    assert answer.status_code == 403


def test_a_revoked_token_is_refused_on_the_next_request() -> None:
    store = InMemoryTokenStore()
    token = store.create("soon-gone", "auditor")
    app = create_ledger(LedgerSettings("127.0.0.1:9", "postgresql://x", Path("t")), no_database, store,
                        FixedClock(datetime(2026, 11, 23, tzinfo=UTC)))  # fmt: skip
    headers = {"Authorization": f"Bearer {token}"}
    assert TestClient(app).get("/v1/licensees/omnisoft/ledger", headers=headers).status_code == 503
    store.revoke(token.split("_")[1])
    assert TestClient(app).get("/v1/licensees/omnisoft/ledger", headers=headers).status_code == 401
