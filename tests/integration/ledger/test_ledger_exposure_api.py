"""Unbilled exposure on the real PostgreSQL: the demo's October, a licensee that used enterprise-scale volume
and paid nothing, a month not invoiced yet, the answers to bad requests, and the audit report's section."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from ledger_support import LedgerDb, demo_billables, hour_bucket, insert_usage, ledger_schema
from starlette.testclient import TestClient
from test_ledger_demo_invoices import AFTER_GRACE

from services.core.agreements import load_agreements
from services.core.clock import FixedClock
from services.core.events import ApiCall
from services.core.tokens import InMemoryTokenStore
from services.demo.scenario import AGREEMENTS_FILE
from services.ledger.adapters.http.api import create_app
from services.ledger.adapters.postgres.agreements_store import save_agreements
from services.ledger.adapters.postgres.db import url_connector
from services.ledger.adapters.postgres.invoices import Invoicer
from services.ledger.settings import LedgerSettings

pytestmark = pytest.mark.integration

ENTERPRISE_OCTOBER = 200_000_000 // 12  # the shipped catalogue's USD 2M a year, October's twelfth


def calls(licensee: str, count: int, start: datetime, records: int) -> list[ApiCall]:
    """`count` calls of one licensee, a minute apart from `start`."""
    return [ApiCall(f"{licensee}-{i}", f"gw-{licensee}", start + timedelta(minutes=i), licensee, "scraper",
                    "/2/tweets/search/all", "GET", 200, records, records * 900, "someone", "commercial")
            for i in range(count)]  # fmt: skip


@pytest.fixture(scope="module")
def exposure_db(database_url: str, app_database_url: str) -> Iterator[LedgerDb]:
    """The demo's October, invoiced; `freeloader` with 2,500 calls and 70,000 records and no agreement;
    pebble's first November calls (November is not due yet, so not invoiced)."""
    with ledger_schema(database_url, app_database_url, "exposure") as db:
        save_agreements(db.app_url, load_agreements(AGREEMENTS_FILE))
        freeloader = calls("freeloader", 2_500, datetime(2026, 10, 2, tzinfo=UTC), 28)
        pebble = calls("pebble", 20, datetime(2026, 11, 2, tzinfo=UTC), 10)
        insert_usage(db, [*demo_billables(), *map(hour_bucket, freeloader + pebble)])
        Invoicer(url_connector(db.app_url), FixedClock(AFTER_GRACE), timedelta(hours=72)).issue_due()
        yield db


@pytest.fixture(scope="module")
def tokens() -> InMemoryTokenStore:
    return InMemoryTokenStore()


@pytest.fixture(scope="module")
def client(exposure_db: LedgerDb, tokens: InMemoryTokenStore) -> TestClient:
    settings = LedgerSettings("127.0.0.1:9", exposure_db.app_url, Path("/nonexistent"))
    app = create_app(settings, url_connector(exposure_db.app_url), tokens, FixedClock(AFTER_GRACE))
    test_client = TestClient(app)
    test_client.headers["Authorization"] = f"Bearer {tokens.create('auditor', 'auditor')}"
    return test_client


def test_omnisoft_overran_its_deal_and_the_enterprise_list_price_shows_the_gap(client: TestClient) -> None:
    answer = client.get("/v1/licensees/omnisoft/exposure/2026-10")
    assert answer.status_code == 200, answer.text
    found = answer.json()
    assert found["usage"] == {"calls": 3_240, "records": 81_000}
    quoted = found["list_price"]
    assert (quoted["tier_id"], quoted["over_calls"], quoted["over_records"]) == ("enterprise", 1_240, 21_000)
    assert quoted["total_minor"] == ENTERPRISE_OCTOBER + 6_200 + 52_500
    billed = found["billed"]
    assert (billed["source"], billed["amount_minor"], billed["invoice_ids"]) == (
        "invoice", 15_077_500, ["INV-omnisoft-2026-10"])  # fmt: skip
    assert (found["difference_minor"], found["status"]) == (1_647_866, "unbilled exposure")


def test_enterprise_scale_volume_that_paid_nothing_shows_the_whole_gap(client: TestClient) -> None:
    found = client.get("/v1/licensees/freeloader/exposure/2026-10").json()
    listed = ENTERPRISE_OCTOBER + 500 * 5 + 10_000 * 25 // 10  # 500 calls and 10,000 records over
    assert (found["list_price"]["tier"], found["list_minor"], found["billed"]["amount_minor"]) == (
        "Enterprise", listed, 0)  # fmt: skip
    assert found["billed"]["invoice_ids"] == ["INV-freeloader-2026-10"]  # a zero invoice: usage, no agreement
    assert found["unbilled_minor"] == listed
    assert found["summary"].endswith("Unbilled exposure: USD 166,941.66.")


@pytest.mark.parametrize(("licensee", "month", "tier", "billed", "source", "difference"), [
    ("pebble", "2026-10", "basic", 10_000, "invoice", 0),
    ("pebble", "2026-11", "basic", 10_000, "priced usage", 0),  # not invoiced yet: priced now
    ("oldco", "2026-10", "basic", 0, "invoice", 10_000),        # its agreement ended: listed at 0
    ("pebble", "2026-12", None, 10_000, "priced usage", -10_000),  # no usage yet, the fee runs
])  # fmt: skip
def test_what_was_billed_comes_from_the_invoice_or_the_priced_usage(
    client: TestClient, licensee: str, month: str, tier: str | None, billed: int, source: str, difference: int
) -> None:
    found = client.get(f"/v1/licensees/{licensee}/exposure/{month}").json()
    assert (found["list_price"] or {}).get("tier_id") == tier
    assert (found["billed"]["amount_minor"], found["billed"]["source"]) == (billed, source)
    assert found["difference_minor"] == difference


def test_csv_gives_one_row(client: TestClient) -> None:
    answer = client.get("/v1/licensees/omnisoft/exposure/2026-10", headers={"Accept": "text/csv"})
    header, row = answer.text.strip().split("\r\n")
    assert header.startswith("licensee_id,month,calls,records,tier_id,list_minor")
    assert row == ("omnisoft,2026-10,3240,81000,enterprise,16725366,invoice,15077500,1647866,USD,"
                   "unbilled exposure")


@pytest.mark.parametrize(("path", "status", "field"), [
    ("/v1/licensees/omnisoft/exposure/2026-13", 400, "month"),
    ("/v1/licensees/omnisoft/exposure/\uff12\uff10\uff12\uff16-10", 400, "month"),  # fullwidth digits
    ("/v1/licensees/-bad/exposure/2026-10", 400, "licensee_id"),
    ("/v1/licensees/nobody/exposure/2026-10", 404, "licensee_id"),
    ("/v1/licensees/omnisoft/exposure/2026-10?x=1", 400, "x"),
])  # fmt: skip
def test_bad_requests_name_the_parameter(client: TestClient, path: str, status: int, field: str) -> None:
    answer = client.get(path)
    assert (answer.status_code, answer.json()["errors"][0]["field"]) == (status, field), answer.text


def test_only_finance_and_auditors_may_read_it(client: TestClient, tokens: InMemoryTokenStore) -> None:
    path = "/v1/licensees/omnisoft/exposure/2026-10"
    assert client.get(path, headers={"Authorization": "Bearer nope"}).status_code == 401
    ingest = tokens.create("gateway", "ingest")
    assert client.get(path, headers={"Authorization": f"Bearer {ingest}"}).status_code == 403
    finance = tokens.create("finance", "finance")
    assert client.get(path, headers={"Authorization": f"Bearer {finance}"}).status_code == 200


def test_the_audit_report_has_the_same_figures_per_month(client: TestClient) -> None:
    period = "/v1/licensees/pebble/audit-report?from=2026-10&to=2026-12"
    facts = client.get(period, headers={"Accept": "application/json"}).json()
    assert [(m["month"], m["billed"]["source"], m["difference_minor"]) for m in facts["exposure"]] == [
        ("2026-10", "invoice", 0), ("2026-11", "priced usage", 0)]  # fmt: skip
    html = client.get("/v1/licensees/omnisoft/audit-report?from=2026-10&to=2026-11").text
    section = html[html.index("<h2>Unbilled exposure</h2>"):html.index("<h2>Ledger hash chain heads</h2>")]
    for figure in ("Enterprise", "USD 167,253.66", "USD 150,775.00", "Unbilled exposure: USD 16,478.66."):
        assert figure in section, figure
