"""Fuzzing the finance/audit API process from its own OpenAPI document (schemathesis) and with arbitrary
text in every parameter (hypothesis): whatever arrives, the answer is never a 5xx."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from security_support import Targets

from services.ledger.adapters.http.openapi import openapi_document

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
ROUTES = ["ledger", "usage-report", "invoices/{month}", "exposure/{month}"]


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


# Issue 17's attacks, kept in the fuzz set: digits beyond ASCII (str.isdigit() takes them, int() refuses or
# reads them) in every numeric parameter, and an Idempotency-Key reused with another body.
OTHER_DIGIT = st.characters(categories=["Nd", "No"]).filter(lambda c: not c.isascii())
DIGITS = st.lists(OTHER_DIGIT | st.sampled_from("0123456789"), min_size=1, max_size=8).map("".join).filter(
    lambda text: not text.isascii()
)


@given(limit=DIGITS)
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_a_limit_with_any_non_ascii_digit_is_a_400_naming_it(targets: Targets, limit: str) -> None:
    answer = httpx.get(f"{targets.ledger_url}/v1/licensees/pebble/ledger", params={"limit": limit},
                       headers=targets.bearer("auditor"), timeout=30)  # fmt: skip
    assert answer.status_code == 400, answer.text[:300]
    assert answer.json()["errors"][0]["field"] == "limit"


@given(year=DIGITS, name=st.sampled_from(["from", "to", "month"]))
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_a_date_with_any_non_ascii_digit_is_a_400_naming_it(targets: Targets, year: str, name: str) -> None:
    value = f"{year}-10" if name == "month" else f"{year}-10-01"
    path = f"invoices/{quote(value, safe='')}" if name == "month" else "usage-report"
    answer = httpx.get(f"{targets.ledger_url}/v1/licensees/pebble/{path}",
                       params={} if name == "month" else {name: value},
                       headers=targets.bearer("auditor"), timeout=30)  # fmt: skip
    assert answer.status_code == 400, answer.text[:300]
    assert answer.json()["errors"][0]["field"] == name


@given(reference=DIGITS)
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_a_reference_with_any_non_ascii_digit_is_a_400_naming_it(targets: Targets, reference: str) -> None:
    body = {"amount_minor": -1, "reason": "fuzz", "reference": reference}
    answer = httpx.post(f"{targets.ledger_url}/v1/licensees/omnisoft/adjustments", json=body,
                        headers=targets.bearer("finance"), timeout=30)  # fmt: skip
    assert answer.status_code == 400, answer.text[:300]
    assert answer.json()["errors"][0]["field"] == "reference"


@given(amount=st.integers(min_value=-(10**9), max_value=10**9).filter(lambda n: n not in (0, -3)),
       reason=st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=40)
       .filter(str.strip))  # fmt: skip
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_an_idempotency_key_reused_with_any_other_body_is_a_422(
    targets: Targets, invoice_id: str, amount: int, reason: str
) -> None:
    url, key = f"{targets.ledger_url}/v1/licensees/omnisoft/adjustments", f"fuzz-{uuid.uuid4()}"
    headers = {**targets.bearer("finance"), "Idempotency-Key": key}
    first = {"amount_minor": -3, "reason": "fuzz original", "reference": invoice_id}
    assert httpx.post(url, json=first, headers=headers, timeout=30).status_code == 201
    other = {**first, "amount_minor": amount, "reason": reason}
    answer = httpx.post(url, json=other, headers=headers, timeout=30)  # the amount always differs
    assert answer.status_code == 422, answer.text[:300]
    assert answer.json()["errors"][0]["field"] == "Idempotency-Key"
