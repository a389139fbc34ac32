"""Fuzzing the finance/audit API process from its own OpenAPI document (schemathesis) and with arbitrary
text in every parameter (hypothesis): whatever arrives, the answer is never a 5xx."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from security_support import Targets

from services.ledger.openapi import openapi_document

pytestmark = pytest.mark.integration

DOCUMENTED = {str(code) for path in openapi_document()["paths"].values()
              for operation in path.values() for code in operation["responses"]}  # fmt: skip


SCHEMA = schemathesis.openapi.from_dict(openapi_document())


def test_the_ledger_serves_its_openapi_document_without_a_token(targets: Targets) -> None:
    answer = httpx.get(f"{targets.ledger_url}/openapi.json", timeout=10)
    assert answer.status_code == 200
    assert answer.json() == openapi_document()


@SCHEMA.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_schemathesis_finds_no_server_error_and_no_undocumented_status(case: Any, targets: Targets) -> None:
    response = case.call(base_url=targets.ledger_url, headers=targets.bearer("finance"), timeout=30)
    assert response.status_code < 500, response.text[:500]
    assert str(response.status_code) in DOCUMENTED | {"404", "405"}, response.text[:300]


TEXT = st.text(st.characters(codec="utf-8"), max_size=300)
ROUTES = ["ledger", "usage-report", "invoices/{month}"]


@pytest.mark.parametrize("route", ROUTES)
@given(licensee=TEXT, month=TEXT, start=TEXT, end=TEXT, limit=TEXT)
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_arbitrary_text_in_path_and_query_never_gets_a_5xx(
    targets: Targets, route: str, licensee: str, month: str, start: str, end: str, limit: str
) -> None:
    tail = route.format(month=quote(month, safe="") or "m")
    path = f"/v1/licensees/{quote(licensee, safe='') or 'x'}/{tail}"
    query = {"from": start, "to": end, "limit": limit} if route == "ledger" else {"from": start, "to": end}
    answer = httpx.get(targets.ledger_url + path, params=query, headers=targets.bearer("auditor"), timeout=30)
    assert answer.status_code < 500, answer.text[:300]
    if answer.status_code == 400:
        assert answer.json()["errors"][0]["field"]


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)


@given(body=st.dictionaries(st.sampled_from(["amount_minor", "reason", "reference", "currency"]), JSON)
       | JSON)  # fmt: skip
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
def test_an_arbitrary_adjustment_body_never_gets_a_5xx(targets: Targets, body: Any) -> None:
    answer = httpx.post(f"{targets.ledger_url}/v1/licensees/omnisoft/adjustments", json=body,
                        headers=targets.bearer("finance"), timeout=30)  # fmt: skip
    assert answer.status_code < 500, answer.text[:300]
