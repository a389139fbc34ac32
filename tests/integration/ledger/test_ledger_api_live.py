"""The finance/audit API on the demo ledger in PostgreSQL: content, CSV, roles, adjustments."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from ledger_support import LedgerDb, settings_for
from starlette.testclient import TestClient
from test_ledger_demo_invoices import AFTER_GRACE, load_and_consume

from services.core.clock import FixedClock
from services.core.month import Month
from services.core.tokens import InMemoryTokenStore
from services.ledger.adapters.http.api import create_app
from services.ledger.adapters.postgres.db import url_connector
from services.ledger.adapters.postgres.invoices import Invoicer

pytestmark = pytest.mark.integration


@pytest.fixture
def demo_api(ledger_db: LedgerDb, kafka_bootstrap: str, billable_topics: tuple[str, str]):  # type: ignore[no-untyped-def]
    load_and_consume(ledger_db, kafka_bootstrap, billable_topics).close()
    clock = FixedClock(AFTER_GRACE)
    Invoicer(url_connector(ledger_db.app_url), clock, timedelta(hours=72)).issue_due()
    tokens = InMemoryTokenStore()
    app = create_app(settings_for(kafka_bootstrap, ledger_db, billable_topics),
        url_connector(ledger_db.app_url),
                     tokens, clock)  # fmt: skip
    finance = {"Authorization": f"Bearer {tokens.create('finance', 'finance')}"}
    auditor = {"Authorization": f"Bearer {tokens.create('auditor', 'auditor')}"}
    return TestClient(app), finance, auditor


def test_an_auditor_reads_the_invoice_as_json_and_as_csv(demo_api) -> None:  # type: ignore[no-untyped-def]
    client, _, auditor = demo_api
    answer = client.get("/v1/licensees/omnisoft/invoices/2026-10", headers=auditor)
    assert answer.status_code == 200
    body = answer.json()
    assert (body["invoice_id"], body["total_minor"], body["currency"]) == (
        "INV-omnisoft-2026-10",
        15_077_500,
        "USD",
    )
    as_csv = client.get("/v1/licensees/omnisoft/invoices/2026-10", headers={**auditor, "Accept": "text/csv"})
    assert as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [r["kind"] for r in rows] == ["fee", "usage", "total"]
    assert [int(r["amount_minor"]) for r in rows] == [15_000_000, 77_500, 15_077_500]


def test_a_missing_invoice_is_404_and_get_never_issues(demo_api) -> None:  # type: ignore[no-untyped-def]
    client, finance, _ = demo_api
    answer = client.get("/v1/licensees/omnisoft/invoices/2026-09", headers=finance)
    assert answer.status_code == 404
    assert answer.json()["errors"][0]["field"] == "month"


def test_the_usage_report_as_csv_lists_government_orgs_and_notice(demo_api) -> None:  # type: ignore[no-untyped-def]
    client, _, auditor = demo_api
    answer = client.get("/v1/licensees/omnisoft/usage-report?from=2026-10&to=2026-11",
                        headers={**auditor, "Accept": "text/csv"})  # fmt: skip
    rows = [r for r in csv.DictReader(io.StringIO(answer.text)) if r["section"] == "government_org"]
    assert {(r["org_id"], r["notice_first"], r["calls"]) for r in rows} == {
        ("gov-intel-agency", "false", "30"), ("gov-statistics-office", "true", "20")}  # fmt: skip


def test_finance_posts_an_adjustment_once_per_idempotency_key_and_it_lands_on_the_next_invoice(
    demo_api,
    ledger_db: LedgerDb,  # type: ignore[no-untyped-def]
) -> None:
    client, finance, auditor = demo_api
    body = {
        "amount_minor": -5_000,
        "reason": "goodwill credit for the outage",
        "reference": "INV-pebble-2026-10",
    }
    headers = {**finance, "Idempotency-Key": "ticket-42"}
    assert client.post("/v1/licensees/pebble/adjustments", json=body, headers=auditor).status_code == 403
    first = client.post("/v1/licensees/pebble/adjustments", json=body, headers=headers)
    again = client.post("/v1/licensees/pebble/adjustments", json=body, headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["entry_id"] == again.json()["entry_id"]
    unknown = client.post(
        "/v1/licensees/pebble/adjustments", json={**body, "reference": "INV-x"}, headers=finance
    )
    assert (unknown.status_code, unknown.json()["errors"][0]["field"]) == (400, "reference")
    ledger = client.get("/v1/licensees/pebble/ledger", headers=auditor).json()["entries"]
    assert [(e["kind"], e["amount_minor"]) for e in ledger][-1] == ("adjustment", -5_000)
    december = FixedClock(AFTER_GRACE + timedelta(days=31))
    Invoicer(url_connector(ledger_db.app_url), december, timedelta(hours=72)).issue("pebble", Month(2026, 11))
    november = client.get("/v1/licensees/pebble/invoices/2026-11", headers=auditor).json()
    assert [(x["kind"], x["amount_minor"]) for x in november["lines"]] == [
        ("fee", 10_000), ("usage", 0), ("adjustment", -5_000)]  # fmt: skip
    assert november["total_minor"] == 5_000


def test_finance_can_issue_a_due_invoice_on_demand_and_the_auditor_cannot(demo_api) -> None:  # type: ignore[no-untyped-def]
    client, finance, auditor = demo_api
    assert client.post("/v1/licensees/pebble/invoices/2026-10", headers=auditor).status_code == 403
    assert (
        client.post("/v1/licensees/pebble/invoices/2026-10", headers=finance).status_code == 200
    )  # already issued
    assert client.post("/v1/licensees/pebble/invoices/2026-11", headers=finance).status_code == 409  # not due
