"""The audit evidence report on the demo ledger in PostgreSQL: its figures, its escaping, its CLI."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from ledger_support import LedgerDb, demo_billables, insert_usage
from starlette.testclient import TestClient
from test_ledger_demo_invoices import AFTER_GRACE

from services.cli import main
from services.core.agreements import load_agreements, parse_agreement
from services.core.clock import FixedClock
from services.core.tokens import InMemoryTokenStore
from services.demo.scenario import AGREEMENTS_FILE
from services.ledger.adapters.http.api import create_app
from services.ledger.adapters.postgres.agreements_store import save_agreements
from services.ledger.adapters.postgres.db import url_connector
from services.ledger.adapters.postgres.invoices import Invoicer
from services.ledger.settings import LedgerSettings

pytestmark = pytest.mark.integration

HOSTILE_NAME = 'Omnisoft <script>alert("name")</script> & Co'
HOSTILE_USE = "<img src=x onerror=alert(1)>"
PATH = "/v1/licensees/omnisoft/audit-report?from=2026-10&to=2026-11"


@pytest.fixture
def audit_db(ledger_db: LedgerDb) -> LedgerDb:
    agreements = load_agreements(AGREEMENTS_FILE)
    raw = agreements[0].raw
    apps = [{**raw["apps"][0], "use_case": HOSTILE_USE}, *raw["apps"][1:]]
    agreements[0] = parse_agreement({**raw, "name": HOSTILE_NAME, "apps": apps})
    save_agreements(ledger_db.app_url, agreements)
    insert_usage(ledger_db, demo_billables())
    Invoicer(url_connector(ledger_db.app_url), FixedClock(AFTER_GRACE), timedelta(hours=72)).issue_due()
    return ledger_db


@pytest.fixture
def client(audit_db: LedgerDb) -> TestClient:
    tokens = InMemoryTokenStore()
    settings = LedgerSettings("127.0.0.1:9", audit_db.app_url, Path("/nonexistent"))
    app = create_app(settings, url_connector(audit_db.app_url), tokens, FixedClock(AFTER_GRACE))
    test_client = TestClient(app)
    test_client.headers["Authorization"] = f"Bearer {tokens.create('auditor', 'auditor')}"
    return test_client


def test_the_html_report_holds_the_key_figures_of_the_period(client: TestClient) -> None:
    answer = client.get(PATH, headers={"Accept": "text/html"})
    assert answer.headers["content-type"].startswith("text/html")
    assert "script-src" not in answer.headers["content-security-policy"]  # default-src 'none' forbids it
    html = answer.text
    for figure in ("USD 150,775.00", "gov-intel-agency", "gov-statistics-office", "omni-shadow", "<svg",
                   "No alert was raised for this period.", "matches"):  # fmt: skip
        assert figure in html, figure
    assert "DIFFERS" not in html and "not invoiced yet" not in html


def test_licensee_provided_text_is_escaped_never_markup(client: TestClient) -> None:
    html = client.get(PATH).text
    assert "<script" not in html and "<img" not in html
    assert "Omnisoft &lt;script&gt;alert(&quot;name&quot;)&lt;/script&gt; &amp; Co" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


def test_the_json_facts_split_each_org_at_its_notice_and_judge_the_rule(client: TestClient) -> None:
    facts = client.get(PATH, headers={"Accept": "application/json"}).json()
    orgs = {g["org_id"]: g for g in facts["government"]}
    intel, statistics = orgs["gov-intel-agency"], orgs["gov-statistics-office"]
    assert (intel["calls_before_notice"], intel["calls_after_notice"], intel["rule_kept"]) == (30, 0, False)
    assert (statistics["calls_before_notice"], statistics["calls_after_notice"], statistics["rule_kept"]) == (
        0, 20, True)  # fmt: skip
    assert [(c["month"], c["calls"], c["invoiced_calls"], c["status"]) for c in facts["cross_check"]] == [
        ("2026-10", 3_240, 3_240, "matches")]  # fmt: skip
    assert facts["alerts"] == [] and [a["in_force"] for a in facts["agreements"]] == [True]


def test_the_report_states_its_period_or_is_refused_naming_the_missing_bound(client: TestClient) -> None:
    answer = client.get("/v1/licensees/omnisoft/audit-report?from=2026-10")
    assert (answer.status_code, answer.json()["errors"][0]["field"]) == (400, "to")


def test_the_cli_writes_the_same_report_to_a_file(audit_db: LedgerDb, tmp_path: Path) -> None:
    output = tmp_path / "omnisoft.html"
    argv = ["report", "audit", "--licensee", "omnisoft", "--from", "2026-10", "--to", "2026-11", "-o",
            str(output), "--database-url", audit_db.app_url]  # fmt: skip
    assert main(argv) == 0
    html = output.read_text(encoding="utf-8")
    assert "USD 150,775.00" in html and "<script" not in html
    assert main([*argv[:5], "2026-1x", *argv[6:]]) == 2
