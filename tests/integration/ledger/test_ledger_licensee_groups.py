"""Licensee groups in the ledger: agreements keep their parent, the usage report (JSON and CSV) and the audit
report roll a group up over its members against the group's caps with the group's alert, the requester org
served under several licensees in one month is listed, and the group's own record is never invoiced.

Northwind has two accounts (nw-eu: 60 calls, nw-us: 50, each far below its own 1,000-call cap) and a group
record capping the company at 100 calls a month; the group stage's breach alert (the processor's domain
code over the members' calls) arrives on a real Kafka alerts topic. pebble, outside the group, also served
the requester org `shared-reader` in October.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from ledger_support import LedgerDb, hour_bucket, insert_usage
from test_ledger_alerts import alert_settings_for, produce_in_transactions, values
from test_ledger_alerts_report import client_for
from test_ledger_demo_invoices import AFTER_GRACE

from services.core.agreements import Agreement, load_agreements, parse_agreement
from services.core.clock import FixedClock
from services.core.events import AlertRaised, ApiCall
from services.demo.scenario import AGREEMENTS_FILE
from services.ledger.adapters.kafka.alert_consumer import AlertConsumer
from services.ledger.adapters.postgres.agreements_store import save_agreements
from services.ledger.adapters.postgres.db import url_connector
from services.ledger.adapters.postgres.invoices import Invoicer
from services.processor.domain.groups import decide_group, group_call
from services.processor.domain.store import InMemoryPartition

pytestmark = pytest.mark.integration

OCT = datetime(2026, 10, 1, tzinfo=UTC)
PERIOD = "from=2026-10&to=2026-11"
MEMBERS = {"nw-eu": 60, "nw-us": 50}
HTML = {"Accept": "text/html"}


def _agreements() -> tuple[Agreement, list[Agreement]]:
    pebble = next(a for a in load_agreements(AGREEMENTS_FILE) if a.licensee_id == "pebble")
    limits = {**pebble.raw["limits"], "calls_per_month": 1000}
    group = parse_agreement({
        "licensee_id": "northwind", "kind": "group", "name": "Northwind Holdings",
        "effective_from": "2026-01-01", "effective_to": None, "limits": {"calls_per_month": 100},
    })  # fmt: skip
    members = [
        parse_agreement({**pebble.raw, "licensee_id": m, "name": f"Northwind {m}", "parent_id": "northwind",
                         "limits": limits})
        for m in MEMBERS
    ]  # fmt: skip
    return group, [*members, pebble]


def _calls() -> list[ApiCall]:
    calls = []
    for licensee, count in {**MEMBERS, "pebble": 5}.items():
        for n in range(count):
            org = "shared-reader" if n % 10 == 0 else f"{licensee}-reader"
            at = OCT + timedelta(hours=2, minutes=n)
            calls.append(ApiCall(f"{licensee}-{n}", f"gw-{licensee}", at, licensee, "pebble-app", "/x", "GET",
                                 200, 3, 100, org, "commercial"))  # fmt: skip
    return sorted(calls, key=lambda c: c.time)


def _group_alerts(group: Agreement, agreements: list[Agreement], calls: list[ApiCall]) -> list[AlertRaised]:
    """The group stage's decisions over the members' calls, as the processor makes them."""
    by_id = {a.licensee_id: a for a in agreements}
    state, alerts = InMemoryPartition().licensee("northwind"), []
    for call in calls:
        found = group_call(call, by_id[call.licensee_id])
        if found is not None:
            decision = decide_group(found, state, group, OCT + timedelta(days=40), 400 * 86400.0)
            state.apply(decision.writes, call.time.timestamp())
            alerts += decision.alerts
    return alerts


@pytest.fixture
def group_db(ledger_db: LedgerDb, kafka_bootstrap: str, new_topic: Callable[..., str]) -> LedgerDb:
    group, agreements = _agreements()
    save_agreements(ledger_db.app_url, [group, *agreements])
    calls = _calls()
    insert_usage(ledger_db, [hour_bucket(c) for c in calls])
    topics = new_topic(partitions=2, suffix="alerts"), new_topic(partitions=1, suffix="dlq")
    produce_in_transactions(kafka_bootstrap, topics[0], values(_group_alerts(group, agreements, calls)), [])
    consumer = AlertConsumer(alert_settings_for(kafka_bootstrap, ledger_db, topics))
    consumer.drain(timeout=60)
    consumer.close()
    return ledger_db


def test_the_agreements_table_keeps_each_accounts_parent_and_the_group_record(group_db: LedgerDb) -> None:
    with psycopg.connect(group_db.owner_url) as conn:
        rows = conn.execute("SELECT licensee_id, parent_id, kind FROM agreements ORDER BY 1").fetchall()
    assert rows == [("northwind", None, "group"), ("nw-eu", "northwind", "licensee"),
                    ("nw-us", "northwind", "licensee"), ("pebble", None, "licensee")]  # fmt: skip


def test_the_usage_report_rolls_the_group_up_in_json_and_csv(group_db: LedgerDb) -> None:
    auditor = client_for(group_db)
    group = auditor.get(f"/v1/licensees/nw-eu/usage-report?{PERIOD}").json()["group"]
    [month] = group["months"]
    assert (group["group_id"], group["members"], month["calls"]) == ("northwind", ["nw-eu", "nw-us"], 110)
    assert month["members"] == [{"licensee_id": "nw-eu", "calls": 60, "records": 180},
                                {"licensee_id": "nw-us", "calls": 50, "records": 150}]  # fmt: skip
    assert month["caps"] == [{"metric": "calls", "cap": 100, "used": 110, "share": 1.1, "reached": True}]
    assert sorted(a["rule"] for a in group["alerts"]) == ["volume.breach", "volume.warning"]
    csv = auditor.get(f"/v1/licensees/northwind/usage-report?{PERIOD}", headers={"Accept": "text/csv"}).text
    assert "group_month,,2026-10,,,,110,330," in csv
    assert "group_member_month,,2026-10,,,,60,180," in csv
    assert auditor.get(f"/v1/licensees/pebble/usage-report?{PERIOD}").json()["group"] is None


def test_the_audit_report_shows_the_roll_up_the_group_alert_and_the_shared_org(group_db: LedgerDb) -> None:
    auditor = client_for(group_db)
    for licensee in ("nw-us", "northwind"):
        html = auditor.get(f"/v1/licensees/{licensee}/audit-report?{PERIOD}", headers=HTML).text
        section = html[html.index("<h2>Licensee group</h2>") : html.index("<h2>Requester orgs")]
        for shown in ("northwind", "Northwind Holdings", "members: nw-eu, nw-us", "100 calls a month",
                      "group total", "110", "cap reached: 110 of 100 calls", "volume.breach"):  # fmt: skip
            assert shown in section, (licensee, shown)
    html = auditor.get(f"/v1/licensees/pebble/audit-report?{PERIOD}", headers=HTML).text
    shared = html[html.index("<h2>Requester orgs") :]
    assert "shared-reader" in shared and "nw-eu (group northwind): 6 calls" in shared
    assert "pebble: 1 calls" in shared and "several licensees" in shared
    assert "belongs to no group" in html


def test_the_group_record_is_never_invoiced(group_db: LedgerDb) -> None:
    Invoicer(url_connector(group_db.app_url), FixedClock(AFTER_GRACE), timedelta(hours=72)).issue_due()
    with psycopg.connect(group_db.owner_url) as conn:
        invoiced = {row[0] for row in conn.execute("SELECT DISTINCT licensee_id FROM invoices")}
    assert "northwind" not in invoiced and {"nw-eu", "nw-us", "pebble"} <= invoiced
