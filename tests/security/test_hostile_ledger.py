"""Hostile input against the finance/audit API process over real HTTP: path, query, headers and the
adjustment body. A 4xx naming the field with nothing written, or a success that stored the value
verbatim; never a 5xx."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from security_support import LICENSEE, MONTH, Targets, adjustment, assert_refused, call

pytestmark = pytest.mark.integration

OVERLONG = "@@overlong@@"
TEXT: dict[str, str] = {
    "sql": "'; DROP TABLE usage_entries; --",
    "percent_s": "%s",
    "dollar_1": "$1",
    "nul": "a\x00b",
    "rtl_override": "\u202eomnisoft",
    "emoji": "\U0001f984",
    "huge": "x" * 5000,
    "spaces": " omnisoft ",
    "dot_dot": "../../etc/passwd",
}
PATHS = [("GET", "/ledger"), ("GET", "/usage-report"), ("GET", f"/invoices/{MONTH}"),
         ("POST", f"/invoices/{MONTH}"), ("POST", "/adjustments")]  # fmt: skip


@pytest.mark.parametrize("kind", list(TEXT))
@pytest.mark.parametrize(("method", "suffix"), PATHS)
def test_a_hostile_licensee_id_in_the_path_is_a_400_naming_it(
    http: httpx.Client, targets: Targets, method: str, suffix: str, kind: str
) -> None:
    before = targets.table_counts()
    answer = call(http, targets, method, f"/v1/licensees/{quote(TEXT[kind], safe='')}{suffix}", json={})
    assert_refused(answer, 400, "licensee_id")
    assert targets.table_counts() == before


MONTHS = [v for k, v in TEXT.items() if k != "dot_dot"]
MONTHS += ["2026-13", "2026-1", "0000-00", "-2026-10", "2026-10-01", "9999-12"]
# Digits beyond ASCII (fullwidth, Arabic-Indic), which \d and int() took before (issue 17).
MONTHS += ["\uff12\uff10\uff12\uff16-10", "\u0662\u0660\u0662\u0666-10", "2026-1\u0660", "2026-10\n"]


@pytest.mark.parametrize("value", MONTHS)
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_hostile_month_in_the_path_is_a_400_naming_it(
    http: httpx.Client, targets: Targets, method: str, value: str
) -> None:
    before = targets.table_counts()
    answer = call(http, targets, method, f"/v1/licensees/{LICENSEE}/invoices/{quote(value, safe='')}")
    assert_refused(answer, 400, "month")
    assert targets.table_counts() == before


@pytest.mark.parametrize("month", ["0001-01", "9998-12"])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_month_at_the_edge_of_the_calendar_is_a_404_or_409_not_a_5xx(
    http: httpx.Client, targets: Targets, method: str, month: str
) -> None:
    answer = call(http, targets, method, f"/v1/licensees/{LICENSEE}/invoices/{month}")
    assert answer.status_code in (404, 409), answer.text  # nothing issued; nothing to invoice or not due
    assert answer.json()["errors"][0]["field"] == "month"


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_month_holding_a_slash_matches_no_route(http: httpx.Client, targets: Targets, method: str) -> None:
    answer = call(http, targets, method, f"/v1/licensees/{LICENSEE}/invoices/{quote('../x', safe='')}")
    assert answer.status_code == 404


@pytest.mark.parametrize("value", [*TEXT.values(), "9999-99-99", "2026-10-01T00:00:00", "yesterday", "1e9"])
@pytest.mark.parametrize("name", ["from", "to"])
@pytest.mark.parametrize("route", ["/ledger", "/usage-report"])
def test_a_hostile_time_bound_is_a_400_naming_it(
    http: httpx.Client, targets: Targets, route: str, name: str, value: str
) -> None:
    answer = call(http, targets, "GET", f"/v1/licensees/{LICENSEE}{route}", params={name: value})
    assert_refused(answer, 400, name)


@pytest.mark.parametrize("value", [*TEXT.values(), "0", "-1", "10001", "1.5", "1e3", "9" * 40])
def test_a_hostile_limit_is_a_400_naming_it(http: httpx.Client, targets: Targets, value: str) -> None:
    answer = call(http, targets, "GET", f"/v1/licensees/{LICENSEE}/ledger", params={"limit": value})
    assert_refused(answer, 400, "limit")


@pytest.mark.parametrize("name", [TEXT["sql"], "%s", "$1", "from\x00", "\u202efrom", "x" * 300])
def test_an_unknown_query_parameter_is_a_400_naming_it(
    http: httpx.Client, targets: Targets, name: str
) -> None:
    answer = call(http, targets, "GET", f"/v1/licensees/{LICENSEE}/ledger", params={name: "1"})
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["field"] == name


@pytest.mark.parametrize(("start", "end"), [
    ("0001-01-01", "9999-12-31"),
    ("0001-01-02T00:00:00+14:00", "9999-12-30T23:59:59-12:00"),
    ("1970-01", "2038-01-19T03:14:08Z"),
])  # fmt: skip
@pytest.mark.parametrize("route", ["/ledger", "/usage-report"])
def test_time_bounds_at_the_edge_of_the_calendar_are_answered(
    http: httpx.Client, targets: Targets, route: str, start: str, end: str
) -> None:
    answer = call(http, targets, "GET", f"/v1/licensees/{LICENSEE}{route}", role="auditor",
                  params={"from": start, "to": end})  # fmt: skip
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize("accept", [TEXT["sql"], "%s", "text/csv;q=%s", "*/*" * 1000, "text/csv, $1"])
def test_a_hostile_accept_header_still_gets_json_or_csv(
    http: httpx.Client, targets: Targets, accept: str
) -> None:
    answer = call(http, targets, "GET", f"/v1/licensees/{LICENSEE}/ledger", headers={"Accept": accept})
    assert answer.status_code == 200
    assert answer.headers["content-type"].split(";")[0] in ("application/json", "text/csv")


@pytest.mark.parametrize("authorization", [
    "Bearer " + TEXT["sql"], "Bearer %s", "Bearer $1", "Bearer tg_" + "a" * 10_000,
    "Bearer tg_x_" + TEXT["sql"], "'; DROP TABLE usage_entries; --",
])  # fmt: skip
def test_a_hostile_authorization_header_is_a_401(
    http: httpx.Client, targets: Targets, authorization: str
) -> None:
    answer = http.get(f"{targets.ledger_url}/v1/licensees/{LICENSEE}/ledger",
                      headers={"Authorization": authorization})  # fmt: skip
    assert_refused(answer, 401, "Authorization")


def encode(document: Any) -> bytes:
    """JSON with lone surrogates escaped and the overlong mark as raw 0xC0 0xAF bytes."""
    raw = json.dumps(document, ensure_ascii=True).encode("ascii")
    return raw.replace(json.dumps(OVERLONG).encode(), b'"\xc0\xaf"')


BODY_VALUES: dict[str, Any] = {
    **TEXT,
    "lone_surrogate": "\ud800",
    "overlong_utf8": OVERLONG,
    "integer": 12345,
    "negative": -1,
    "zero": 0,
    "float": 1.5,
    "huge_integer": 2**70,
    "null": None,
    "boolean": True,
    "list": ["x"],
    "object": {"$gt": ""},
}
ACCEPTED = {
    "amount_minor": {"integer", "negative"},
    "reason": {"sql", "percent_s", "dollar_1", "rtl_override", "emoji", "spaces", "dot_dot"},
    "reference": set(),  # must name an existing invoice or entry: no hostile value does
    "currency": {"null"},  # optional
}


@pytest.mark.parametrize("kind", list(BODY_VALUES))
@pytest.mark.parametrize("field", list(ACCEPTED))
def test_a_hostile_adjustment_field_is_a_400_naming_it_or_stored_verbatim(
    http: httpx.Client, targets: Targets, invoice_id: str, field: str, kind: str
) -> None:
    value = BODY_VALUES[kind]
    before = targets.table_counts()
    answer = call(http, targets, "POST", f"/v1/licensees/{LICENSEE}/adjustments",
                  content=encode(adjustment(invoice_id, **{field: value})),
                  headers={"Content-Type": "application/json"})  # fmt: skip
    if kind in ACCEPTED[field]:
        assert answer.status_code == 201, answer.text[:500]
        if field == "reason":
            assert answer.json()["reason"] == value.strip()
        assert targets.table_counts()["ledger_entries"] == before["ledger_entries"] + 1
    else:
        expected = "body" if kind in ("lone_surrogate", "overlong_utf8") else field
        assert_refused(answer, 400, expected)
        assert targets.table_counts() == before


@pytest.mark.parametrize(("label", "body", "status", "field"), [
    ("10 MiB of spaces", b" " * (10 * 1024 * 1024), 413, "body"),
    ("nested 20000 deep", b"[" * 20_000 + b"]" * 20_000, 400, "body"),
    ("70 KiB streamed", (b" " * 1024 for _ in range(70)), 413, "body"),
    ("a list", b"[]", 400, "body"),
    ("empty", b"", 400, "body"),
    ("a hostile extra field", json.dumps({"amount_minor": 1, "reason": "r", "reference": "x",
                                          "'; DROP TABLE usage_entries; --": 1}).encode(), 400, None),
])  # fmt: skip
def test_a_malformed_or_oversized_adjustment_body_is_refused(
    http: httpx.Client, targets: Targets, label: str, body: Any, status: int, field: str | None
) -> None:
    before = targets.table_counts()
    answer = call(http, targets, "POST", f"/v1/licensees/{LICENSEE}/adjustments", content=body,
                  headers={"Content-Type": "application/json"})  # fmt: skip
    assert answer.status_code == status, f"{label}: {answer.text[:300]}"
    if field is not None:
        assert answer.json()["errors"][0]["field"] == field
    assert targets.table_counts() == before


@pytest.mark.parametrize(("key", "status"), [
    (TEXT["sql"], 201),  # printable text is a legitimate key: it is only ever a bound parameter
    ("%s$1", 201),
    ("k" * 201, 400),
    ("tab\there", 400),
])  # fmt: skip
def test_a_hostile_idempotency_key_is_a_bound_value_or_a_400(
    http: httpx.Client, targets: Targets, invoice_id: str, key: str, status: int
) -> None:
    answer = call(http, targets, "POST", f"/v1/licensees/{LICENSEE}/adjustments",
                  json=adjustment(invoice_id), headers={"Idempotency-Key": key})  # fmt: skip
    if status == 201:
        assert answer.status_code in (200, 201), answer.text  # 200 when a rerun already posted it
    else:
        assert_refused(answer, 400, "Idempotency-Key")


def test_the_ledger_still_serves_and_its_tables_survived(http: httpx.Client, targets: Targets) -> None:
    assert http.get(f"{targets.ledger_url}/readyz").status_code == 200
    assert set(targets.table_counts()) >= {"usage_entries", "ledger_entries"}
    answer = call(http, targets, "GET", f"/v1/licensees/{LICENSEE}/ledger", role="auditor")
    assert answer.status_code == 200
