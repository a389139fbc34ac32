"""The demo scenario through real Kafka and PostgreSQL: October 2026 invoices right to the cent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml
from ledger_support import LedgerDb, demo_billables, hour_bucket, produce, settings_for

from services.core.agreements import load_agreements
from services.core.clock import FixedClock
from services.core.events import ApiCall
from services.core.month import Month
from services.demo.scenario import AGREEMENTS_FILE, demo_calls
from services.ledger.adapters.kafka.consumer import LedgerConsumer
from services.ledger.adapters.postgres import repository
from services.ledger.adapters.postgres.agreements_store import save_agreements
from services.ledger.adapters.postgres.db import url_connector
from services.ledger.adapters.postgres.invoices import Invoicer

pytestmark = pytest.mark.integration

OCTOBER = Month(2026, 10)
AFTER_GRACE = datetime(2026, 11, 4, 0, 0, 1, tzinfo=UTC)  # 1 November + 72 hours, and a second


def expected_october_totals() -> dict[str, int]:
    """Computed here from the YAML and the scenario's calls, without the pricing module."""
    documents = {a["licensee_id"]: a for a in yaml.safe_load(AGREEMENTS_FILE.read_text())["agreements"]}
    totals: dict[str, int] = {}
    for licensee, agreement in documents.items():
        if agreement.get("kind") == "group":
            continue  # a group's own record caps its members' sum and bills nothing
        start = datetime.fromisoformat(agreement["effective_from"].replace("Z", "+00:00"))
        end = agreement["effective_to"] and datetime.fromisoformat(
            agreement["effective_to"].replace("Z", "+00:00")
        )
        covered = [
            c
            for c in demo_calls()
            if c.licensee_id == licensee and start <= c.time and (not end or c.time < end)
        ]
        in_force_all_october = start <= OCTOBER.start and (not end or end >= OCTOBER.end)
        plan = agreement["plan"]
        if not in_force_all_october:
            assert end and end <= OCTOBER.start, "the demo has no partial months"
            totals[licensee] = 0  # oldco: agreement over, its usage is listed at 0
            continue
        fee = plan["monthly_fee_minor"] + plan["annual_fee_minor"] // 12  # October is not December
        excess = max(0, sum(c.records for c in covered) - plan["included_records"])
        totals[licensee] = fee + -(-excess * plan["overage_per_1000_records_minor"] // 1000)
    return totals


def load_and_consume(db: LedgerDb, bootstrap: str, topics: tuple[str, str]) -> LedgerConsumer:
    save_agreements(db.app_url, load_agreements(AGREEMENTS_FILE))
    produce(bootstrap, topics[0], demo_billables())
    consumer = LedgerConsumer(settings_for(bootstrap, db, topics))
    consumer.drain(timeout=120)
    return consumer


def invoice(db: LedgerDb, licensee: str, month: Month = OCTOBER) -> dict[str, Any]:
    with url_connector(db.app_url)() as conn:
        found = repository.invoice(conn, licensee, month)
    assert found is not None, f"no invoice for {licensee} {month}"
    return found


def invoicer_at(db: LedgerDb, now: datetime) -> Invoicer:
    """An invoicer of `db` whose clock says `now`, with the ledger's default 72 hours of grace."""
    return Invoicer(url_connector(db.app_url), FixedClock(now), timedelta(hours=72))


def test_the_demo_october_invoices_are_exact_to_the_cent(
    ledger_db: LedgerDb, kafka_bootstrap: str, billable_topics: tuple[str, str]
) -> None:
    consumer = load_and_consume(ledger_db, kafka_bootstrap, billable_topics)
    consumer.close()
    assert ledger_db.scalar("SELECT count(*) FROM usage_entries") == len(demo_calls()) == 4190
    early = invoicer_at(ledger_db, AFTER_GRACE - timedelta(seconds=2))
    assert early.issue_due() == []
    invoicer = invoicer_at(ledger_db, AFTER_GRACE)
    assert sorted(invoicer.issue_due()) == [
        "INV-halcyon-news-2026-10", "INV-halcyon-tv-2026-10", "INV-oldco-2026-10", "INV-omnisoft-2026-10",
        "INV-pebble-2026-10",
    ]  # fmt: skip

    expected = expected_october_totals()
    assert expected == {"omnisoft": 15_077_500, "pebble": 10_000, "oldco": 0, "halcyon-news": 10_000,
                        "halcyon-tv": 10_000}  # fmt: skip
    for licensee, total in expected.items():
        found = invoice(ledger_db, licensee)
        assert (found["total_minor"], found["currency"]) == (total, "USD")
        assert sum(line["amount_minor"] for line in found["lines"]) == total
    omnisoft = {line["kind"]: line for line in invoice(ledger_db, "omnisoft")["lines"]}
    assert (omnisoft["fee"]["amount_minor"], omnisoft["usage"]["amount_minor"]) == (15_000_000, 77_500)
    assert (omnisoft["usage"]["calls"], omnisoft["usage"]["records"]) == (3_240, 81_000)
    oldco = invoice(ledger_db, "oldco")["lines"]
    assert [(x["kind"], x["calls"], x["records"], x["amount_minor"]) for x in oldco] == [
        ("unagreed_usage", 50, 250, 0)]  # fmt: skip
    assert "usage without an active agreement" in oldco[0]["description"]
    ledger = ledger_db.rows("SELECT licensee_id, sum(amount_minor) FROM ledger_entries GROUP BY 1 ORDER BY 1")
    assert ledger == [
        ("halcyon-news", 10_000), ("halcyon-tv", 10_000), ("oldco", 0), ("omnisoft", 15_077_500),
        ("pebble", 10_000),
    ]  # fmt: skip


def test_issuing_again_finds_the_first_invoice_and_writes_nothing(
    ledger_db: LedgerDb, kafka_bootstrap: str, billable_topics: tuple[str, str]
) -> None:
    load_and_consume(ledger_db, kafka_bootstrap, billable_topics).close()
    invoicer = invoicer_at(ledger_db, AFTER_GRACE)
    assert len(invoicer.issue_due()) == 5  # every licensee of the demo but the group's own record
    before = ledger_db.snapshot()
    assert invoicer.issue("omnisoft", OCTOBER) == ("INV-omnisoft-2026-10", False)
    assert invoicer.issue_due() == []
    assert ledger_db.snapshot() == before


def test_the_same_billable_messages_delivered_twice_leave_the_ledger_unchanged(
    ledger_db: LedgerDb, kafka_bootstrap: str, billable_topics: tuple[str, str]
) -> None:
    consumer = load_and_consume(ledger_db, kafka_bootstrap, billable_topics)
    invoicer_at(ledger_db, AFTER_GRACE).issue_due()
    before = ledger_db.snapshot()
    produce(kafka_bootstrap, billable_topics[0], demo_billables())  # the processor re-emits everything
    consumer.drain(timeout=120)
    consumer.close()
    replay = LedgerConsumer(
        settings_for(kafka_bootstrap, ledger_db, billable_topics, consumer_group="replay")
    )
    replay.drain(timeout=120)  # a second group reads both copies from offset 0
    replay.close()
    assert sum(replay.positions.values()) == 2 * len(demo_calls())
    assert ledger_db.snapshot() == before


def test_usage_arriving_after_its_month_was_invoiced_is_an_adjustment_on_the_next_invoice(
    ledger_db: LedgerDb, kafka_bootstrap: str, billable_topics: tuple[str, str]
) -> None:
    consumer = load_and_consume(ledger_db, kafka_bootstrap, billable_topics)
    invoicer_at(ledger_db, AFTER_GRACE).issue_due()
    october = invoice(ledger_db, "omnisoft")
    late = ApiCall("late-1", "gateway-omnisoft", datetime(2026, 10, 31, 23, 59, tzinfo=UTC),
        "omnisoft", "omni-news",
                   "/x", "GET", 200, 1_000, 9, "customer-1", "commercial")  # fmt: skip
    produce(kafka_bootstrap, billable_topics[0], [hour_bucket(late)])
    consumer.drain(timeout=60)
    consumer.close()
    invoicer_at(ledger_db, datetime(2026, 12, 10, tzinfo=UTC)).issue_due()
    assert invoice(ledger_db, "omnisoft") == october  # never changed
    november = invoice(ledger_db, "omnisoft", Month(2026, 11))
    lines = {line["kind"]: line for line in november["lines"]}
    adjustment = lines["late_usage"]
    assert (adjustment["usage_month"], adjustment["calls"], adjustment["records"]) == ("2026-10", 1, 1_000)
    assert adjustment["amount_minor"] == 2_500  # 1,000 more records over the allowance at 25.00 per 1,000
    assert adjustment["reference"] == "INV-omnisoft-2026-10"
    assert (
        november["total_minor"] == 15_000_000 + 2_500
    )  # the November fee, no November usage, the adjustment
    entry = ledger_db.rows("SELECT kind, reference FROM ledger_entries WHERE amount_minor = 2500")
    assert entry == [("adjustment", f"INV-omnisoft-2026-11#{adjustment['line_no']}")]


def test_the_usage_report_shows_apps_without_a_use_case_and_whether_government_notice_came_first(
    ledger_db: LedgerDb, kafka_bootstrap: str, billable_topics: tuple[str, str]
) -> None:
    load_and_consume(ledger_db, kafka_bootstrap, billable_topics).close()
    with url_connector(ledger_db.app_url)() as conn:
        report = repository.report(conn, "omnisoft", OCTOBER.start, OCTOBER.end)
    assert sum(row["calls"] for row in report["apps"]) == 3_240
    without = {row["app_id"]: row["registered"] for row in report["apps_without_use_case"]}
    assert without == {"omni-cloud": True, "omni-research": True, "omni-devtools": True, "omni-shadow": False}
    government = {row["org_id"]: row for row in report["government"]}
    assert set(government) == {"gov-intel-agency", "gov-statistics-office"}
    assert (government["gov-intel-agency"]["calls"], government["gov-intel-agency"]["notice_first"]) == (
        30,
        False,
    )
    statistics = government["gov-statistics-office"]
    assert (statistics["calls"], statistics["records"], statistics["notice_first"]) == (20, 500, True)
    assert statistics["notified_at"] < statistics["first_seen"] <= statistics["last_seen"]
