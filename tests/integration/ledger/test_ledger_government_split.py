"""The usage report splits each government org's calls and records at its notice, exactly to the call."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from ledger_support import LedgerDb, hour_bucket, insert_usage
from starlette.testclient import TestClient

from services.core.agreements import load_agreements, parse_agreement
from services.core.clock import FixedClock
from services.core.events import ApiCall
from services.core.tokens import InMemoryTokenStore
from services.demo.scenario import AGREEMENTS_FILE
from services.ledger.adapters.http.api import create_app
from services.ledger.adapters.postgres import repository
from services.ledger.adapters.postgres.agreements_store import save_agreements
from services.ledger.adapters.postgres.db import url_connector
from services.ledger.settings import LedgerSettings

pytestmark = pytest.mark.integration

NOTICE = datetime(2026, 10, 10, 12, tzinfo=UTC)
# (org, event time, records): the notice's own instant is not after it (notice must come strictly first).
CALLS = [
    ("gov-a", NOTICE - timedelta(seconds=1), 1),
    ("gov-a", NOTICE, 2),
    ("gov-a", NOTICE + timedelta(microseconds=1), 4),
    ("gov-a", NOTICE + timedelta(days=1), 8),
    ("gov-b", NOTICE + timedelta(days=2), 16),
    ("gov-b", NOTICE + timedelta(days=3), 32),
    ("customer-1", NOTICE - timedelta(days=1), 64),
]


def split_agreement() -> dict[str, Any]:
    """Omnisoft's demo agreement, with one notice for gov-a only."""
    raw = load_agreements(AGREEMENTS_FILE)[0].raw
    notice = {"org_id": "gov-a", "notified_at": "2026-10-10T12:00:00Z", "use_case": "Statistics"}
    return {**raw, "government_notices": [notice]}


def call(index: int, org: str, at: datetime, records: int) -> ApiCall:
    org_type = "commercial" if org.startswith("customer") else "government"
    return ApiCall(f"split-{index}", "gw-split", at, "omnisoft", "omni-search", "/x", "GET", 200, records,
                   100, org, org_type)  # fmt: skip


@pytest.fixture
def split_db(ledger_db: LedgerDb) -> LedgerDb:
    save_agreements(ledger_db.app_url, [parse_agreement(split_agreement())])
    insert_usage(ledger_db, [hour_bucket(call(i, *fields)) for i, fields in enumerate(CALLS)])
    return ledger_db


def government(db: LedgerDb) -> dict[str, dict[str, Any]]:
    with url_connector(db.app_url)() as conn:
        report = repository.report(conn, "omnisoft", None, None)
    return {row["org_id"]: row for row in report["government"]}


def split(row: dict[str, Any]) -> tuple[Any, ...]:
    names = ("calls_before_notice", "records_before_notice", "calls_after_notice", "records_after_notice")
    return tuple(row[name] for name in names)


def test_calls_up_to_the_notice_instant_count_before_it_and_later_ones_after(split_db: LedgerDb) -> None:
    gov_a = government(split_db)["gov-a"]
    assert split(gov_a) == (2, 1 + 2, 2, 4 + 8)
    assert (gov_a["calls"], gov_a["records"], gov_a["notice_first"]) == (4, 15, False)


def test_an_org_never_notified_has_every_call_before_notice(split_db: LedgerDb) -> None:
    orgs = government(split_db)
    assert split(orgs["gov-b"]) == (2, 48, 0, 0)
    assert "customer-1" not in orgs


def test_the_split_appears_in_the_csv_report_of_the_api(split_db: LedgerDb) -> None:
    tokens = InMemoryTokenStore()
    settings = LedgerSettings("127.0.0.1:9", split_db.app_url, Path("/nonexistent"))
    clock = FixedClock(NOTICE + timedelta(days=30))
    app = create_app(settings, url_connector(split_db.app_url), tokens, clock)
    headers = {"Authorization": f"Bearer {tokens.create('a', 'auditor')}", "Accept": "text/csv"}
    path = "/v1/licensees/omnisoft/usage-report?from=2026-10&to=2026-11"
    answer = TestClient(app).get(path, headers=headers)
    table = csv.DictReader(io.StringIO(answer.text))
    rows = {r["org_id"]: r for r in table if r["section"] == "government_org"}
    assert split(rows["gov-a"]) == ("2", "3", "2", "12")
    assert split(rows["gov-b"]) == ("2", "48", "0", "0")
