"""The stored alerts shown to auditors: the audit report's "Alerts raised" section, GET .../alerts as JSON
and CSV with 400s naming the parameter, and the report as a PDF printed by headless Chromium (pdftotext)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from ledger_support import LedgerDb, demo_billables, insert_usage
from starlette.testclient import TestClient
from test_ledger_alerts import alert_settings_for, omnisoft_alerts, produce_in_transactions, values
from test_ledger_demo_invoices import AFTER_GRACE

from services.cli import main
from services.core.agreements import load_agreements
from services.core.clock import FixedClock
from services.core.tokens import InMemoryTokenStore
from services.demo.scenario import AGREEMENTS_FILE
from services.ledger.adapters.http.api import create_app
from services.ledger.adapters.kafka.alert_consumer import AlertConsumer
from services.ledger.adapters.postgres.agreements_store import save_agreements
from services.ledger.adapters.postgres.db import url_connector
from services.ledger.adapters.postgres.invoices import Invoicer
from services.ledger.settings import LedgerSettings

pytestmark = pytest.mark.integration

REPORT = "/v1/licensees/omnisoft/audit-report?from=2026-10&to=2026-11"
ALERTS = "/v1/licensees/omnisoft/alerts"


@pytest.fixture
def alerts_db(ledger_db: LedgerDb, kafka_bootstrap: str, new_topic: Callable[..., str]) -> LedgerDb:
    """The demo ledger (agreements, October usage, invoices) and six alerts consumed from Kafka."""
    save_agreements(ledger_db.app_url, load_agreements(AGREEMENTS_FILE))
    insert_usage(ledger_db, demo_billables())
    Invoicer(url_connector(ledger_db.app_url), FixedClock(AFTER_GRACE), timedelta(hours=72)).issue_due()
    topics = new_topic(partitions=2, suffix="alerts"), new_topic(partitions=1, suffix="dlq")
    produce_in_transactions(kafka_bootstrap, topics[0], values(omnisoft_alerts(6)), [])
    consumer = AlertConsumer(alert_settings_for(kafka_bootstrap, ledger_db, topics))
    consumer.drain(timeout=60)
    consumer.close()
    return ledger_db


def client_for(db: LedgerDb, role: str = "auditor", chromium: str = "chromium") -> TestClient:
    """The ledger API on `db`, as a holder of `role`."""
    tokens = InMemoryTokenStore()
    settings = LedgerSettings("127.0.0.1:9", db.app_url, Path("/nonexistent"), chromium=chromium)
    app = create_app(settings, url_connector(db.app_url), tokens, FixedClock(AFTER_GRACE))
    test_client = TestClient(app)
    test_client.headers["Authorization"] = f"Bearer {tokens.create(role, role)}"
    return test_client


def test_the_report_lists_the_periods_alerts_with_their_evidence(alerts_db: LedgerDb) -> None:
    html = client_for(alerts_db).get(REPORT, headers={"Accept": "text/html"}).text
    section = html[html.index("<h2>Alerts raised</h2>") :]
    for shown in ("4 alerts (rate.breach: 4).", "omnisoft-000001", "customer-burst (commercial)",
                  "omni-search", "2026-10-20T10:01:00Z to 2026-10-20T10:02:00Z", "151", "100"):  # fmt: skip
        assert shown in section, shown
    assert "omnisoft-000000" not in section  # pebble's alert
    september = client_for(alerts_db).get(REPORT.replace("2026-10", "2026-09").replace("2026-11", "2026-10"))
    assert "No alert was raised for this period." in september.text


def test_the_alerts_route_answers_json_and_csv_for_the_period(alerts_db: LedgerDb) -> None:
    auditor = client_for(alerts_db)
    found = auditor.get(ALERTS, params={"from": "2026-10-20T10:02:00Z", "to": "2026-11"}).json()
    assert [a["evidence"]["event_ids"] for a in found["alerts"]] == [["omnisoft-000002"], ["omnisoft-000004"],
                                                                     ["omnisoft-000005"]]  # fmt: skip
    assert found["alerts"][0]["rule"] == "rate.breach" and found["alerts"][0]["limit"] == 100
    assert (found["count"], found["truncated"]) == (3, False)
    csv = client_for(alerts_db, "finance").get(ALERTS, headers={"Accept": "text/csv"})
    assert csv.headers["content-type"].startswith("text/csv") and csv.text.count("\r\n") == 5  # header + 4


@pytest.mark.parametrize(
    ("query", "field"),
    [("from=2026-13", "from"), ("from=2026-11&to=2026-10", "to"), ("rule=rate.breach", "rule"),
     ("limit=0", "limit"), ("to=yesterday", "to")],
)  # fmt: skip
def test_a_bad_alerts_parameter_is_a_400_naming_it(alerts_db: LedgerDb, query: str, field: str) -> None:
    answer = client_for(alerts_db).get(f"{ALERTS}?{query}")
    assert (answer.status_code, answer.json()["errors"][0]["field"]) == (400, field)


def test_only_auditors_and_finance_read_alerts(alerts_db: LedgerDb) -> None:
    assert client_for(alerts_db, "ingest").get(ALERTS).status_code == 403


def pdf_text(document: bytes, tmp_path: Path) -> str:
    """The text poppler's pdftotext reads from a PDF (installed by scripts/install-system.sh)."""
    assert shutil.which("pdftotext"), "pdftotext is not installed: run `make install` (poppler-utils)"
    path = tmp_path / "report.pdf"
    path.write_bytes(document)
    argv = ["pdftotext", "-layout", str(path), "-"]
    done = subprocess.run(argv, capture_output=True, check=True, timeout=60)  # noqa: S603
    return " ".join(done.stdout.decode().split())


FIGURES = ("Audit evidence report", "USD 150,775.00", "gov-intel-agency", "omni-shadow", "Alerts raised",
           "rate.breach", "omnisoft-000001")  # fmt: skip


def test_the_report_as_pdf_is_printed_by_chromium_with_its_key_figures(
    alerts_db: LedgerDb, tmp_path: Path
) -> None:
    answer = client_for(alerts_db).get(REPORT, headers={"Accept": "application/pdf"})
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/pdf"
    assert answer.content.startswith(b"%PDF")
    text = pdf_text(answer.content, tmp_path)
    for figure in FIGURES:
        assert figure in text, figure


def test_without_chromium_a_pdf_request_is_a_clear_503(alerts_db: LedgerDb) -> None:
    no_browser = client_for(alerts_db, chromium="no-such-chromium")
    answer = no_browser.get(REPORT, headers={"Accept": "application/pdf"})
    error = answer.json()["errors"][0]
    assert (answer.status_code, error["field"]) == (503, "Accept") and "not installed" in error["reason"]


def test_the_cli_writes_a_pdf_when_the_file_name_ends_in_pdf(alerts_db: LedgerDb, tmp_path: Path) -> None:
    output = tmp_path / "omnisoft.pdf"
    argv = ["report", "audit", "--licensee", "omnisoft", "--from", "2026-10", "--to", "2026-11", "-o",
            str(output), "--database-url", alerts_db.app_url]  # fmt: skip
    assert main(argv) == 0
    printed = output.read_bytes()
    assert printed.startswith(b"%PDF") and "rate.breach" in pdf_text(printed, tmp_path)
