"""Aggregated billable deltas through real Kafka and PostgreSQL: every figure equals the per-call truth.

The stream is what the processor emits (services/processor/domain/usage.py): the demo's October calls plus
a government org notified in the middle of one hour, aggregated per licensee, hour, app, org and notice,
and flushed every FLUSH input records (a replay at speed: the processor flushes on its clock, so one flush
covers many calls), with some deltas delivered twice. A second ledger stores the same calls
one row each; the usage report, the government split, the usage query and the invoices must be equal, and
the government split must equal the one computed here call by call.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from ledger_support import LedgerDb, hour_bucket, insert_usage, ledger_schema, produce, settings_for

from services.core.agreements import Agreement, load_agreements, parse_agreement
from services.core.clock import FixedClock
from services.core.events import ApiCall, UsageRecorded
from services.core.month import Month
from services.demo.scenario import AGREEMENTS_FILE, demo_calls
from services.ledger.adapters.kafka.consumer import LedgerConsumer
from services.ledger.adapters.postgres import repository, usage_query
from services.ledger.adapters.postgres.agreements_store import save_agreements
from services.ledger.adapters.postgres.db import url_connector
from services.ledger.adapters.postgres.invoices import Invoicer
from services.processor.domain import usage

pytestmark = pytest.mark.integration

LICENSEES = ("omnisoft", "pebble", "oldco", "halcyon-news", "halcyon-tv")
INPUT = "tollgate.api-calls.v1"
FLUSH = 400  # input records between flushes
COUNCIL_NOTICE = datetime(2026, 10, 10, 12, 30, tzinfo=UTC)
INTEL_NOTICE = datetime(2026, 10, 15, 12, tzinfo=UTC)
NOTICES = {"gov-city-council": COUNCIL_NOTICE, "gov-intel-agency": INTEL_NOTICE}
# The council's calls: four in the notice's hour up to its instant (before notice), three after it.
COUNCIL = [COUNCIL_NOTICE + timedelta(minutes=m) for m in (-25, -20, -10, 0, 1, 15, 29)] + [
    COUNCIL_NOTICE + timedelta(days=3, minutes=5)]  # fmt: skip


def agreements() -> list[Agreement]:
    """The demo agreements; omnisoft also notified the intelligence agency and the city council."""
    found = []
    for agreement in load_agreements(AGREEMENTS_FILE):
        if agreement.licensee_id == "omnisoft":
            notices = list(agreement.raw["government_notices"]) + [
                {"org_id": org, "notified_at": at.isoformat(), "use_case": "Oversight"}
                for org, at in NOTICES.items()]  # fmt: skip
            agreement = parse_agreement({**agreement.raw, "government_notices": notices})
        found.append(agreement)
    return found


def calls() -> list[ApiCall]:
    """The demo's calls and the council's, in event-time order (one input partition)."""
    council = [ApiCall(f"council-{i}", "gw-council", at, "omnisoft", "omni-search", "/x", "GET", 200, 7 + i,
                       100, "gov-city-council", "government") for i, at in enumerate(COUNCIL)]  # fmt: skip
    return sorted(demo_calls() + council, key=lambda c: c.time)


def in_force(found: list[Agreement], call: ApiCall) -> Agreement | None:
    return next((a for a in found if a.licensee_id == call.licensee_id and a.is_active(call.time)), None)


def aggregated(stream: list[ApiCall]) -> list[UsageRecorded]:
    """The processor's deltas: every licensee's open buckets are flushed every FLUSH input records."""
    found, out = agreements(), []
    opened: dict[str, dict[str, list[int]]] = {}
    for position, call in enumerate(stream):
        if position % FLUSH == 0:
            out += flushed(opened)
        buckets = opened.setdefault(call.licensee_id, {})
        bucket = usage.bucket_id(call, in_force(found, call))
        buckets[bucket] = usage.add(buckets.get(bucket), call, position)
    return out + flushed(opened)


def flushed(opened: dict[str, dict[str, list[int]]]) -> list[UsageRecorded]:
    """The deltas closing every open bucket (which are then forgotten)."""
    out = [found for lic, buckets in opened.items() for found in usage.deltas(lic, buckets, INPUT, 0)]
    opened.clear()
    return out


def split_per_call(stream: Iterable[ApiCall]) -> dict[str, tuple[int, int, int, int]]:
    """(calls, records) before and after notice of each government org, judged call by call."""
    split: dict[str, list[int]] = {}
    for call in stream:
        if call.org_type == "government" and call.licensee_id == "omnisoft" and call.org_id:
            notice = NOTICES.get(call.org_id, datetime(2026, 9, 1, tzinfo=UTC))
            row = split.setdefault(call.org_id, [0, 0, 0, 0])
            after = 2 if notice < call.time else 0
            row[after] += 1
            row[after + 1] += call.records
    return {org: (r[0], r[1], r[2], r[3]) for org, r in split.items()}


def figures(db: LedgerDb) -> dict[str, Any]:
    """What finance and auditors see: October invoices, the usage report, an hourly usage query."""
    Invoicer(url_connector(db.app_url), FixedClock(datetime(2026, 11, 5, tzinfo=UTC)), timedelta(hours=72)
             ).issue_due()  # fmt: skip
    query = usage_query.parse_query(
        {
            "licensee": "omnisoft",
            "from": "2026-10-10T12:00:00Z",
            "to": "2026-10-11T00:00:00Z",
            "window": "hour",
            "group_by": "app,org",
        }
    )
    with url_connector(db.app_url)() as conn:
        invoices = {lic: repository.invoice(conn, lic, Month(2026, 10)) for lic in LICENSEES}
        report = repository.report(conn, "omnisoft", datetime(2026, 10, 1, tzinfo=UTC), None)
        hourly = usage_query.run(conn, query)
    lines = {lic: [(x["kind"], x["calls"], x["records"], x["amount_minor"]) for x in found["lines"]]
             for lic, found in invoices.items() if found}  # fmt: skip
    totals = {lic: found["total_minor"] for lic, found in invoices.items() if found}
    return {"lines": lines, "totals": totals, "report": report, "hourly": hourly}


@pytest.fixture
def per_call_truth(database_url: str, app_database_url: str) -> Any:
    """The same calls stored one row each, as the ledger stored them before aggregation."""
    with ledger_schema(database_url, app_database_url, "percall") as db:
        save_agreements(db.app_url, agreements())
        insert_usage(db, [hour_bucket(call) for call in calls()])
        yield figures(db)


def test_aggregated_deltas_give_the_invoices_report_and_government_split_of_the_per_call_truth(
    ledger_db: LedgerDb,
    kafka_bootstrap: str,
    billable_topics: tuple[str, str],
    per_call_truth: dict[str, Any],
) -> None:
    stream, deltas = calls(), aggregated(calls())
    assert len(deltas) < len(stream)  # the demo is sparse (a call every few minutes): its burst aggregates
    save_agreements(ledger_db.app_url, agreements())
    produce(kafka_bootstrap, billable_topics[0], deltas + deltas[::7])  # some delivered twice
    consumer = LedgerConsumer(settings_for(kafka_bootstrap, ledger_db, billable_topics))
    consumer.drain(timeout=120)
    consumer.close()
    assert ledger_db.scalar("SELECT count(*) FROM dead_letters") == 0
    assert ledger_db.scalar("SELECT count(*) FROM usage_entries") == len(deltas)
    assert ledger_db.scalar("SELECT sum(calls) FROM usage_entries") == len(stream) == 4198
    found = figures(ledger_db)
    assert found["totals"] == per_call_truth["totals"]
    assert found["totals"] == {"omnisoft": 15_077_710, "pebble": 10_000, "oldco": 0, "halcyon-news": 10_000,
                               "halcyon-tv": 10_000}  # fmt: skip
    assert found["lines"] == per_call_truth["lines"]
    assert found["report"] == per_call_truth["report"]
    assert found["hourly"] == per_call_truth["hourly"] and found["hourly"]["exact"]
    names = ("calls_before_notice", "records_before_notice", "calls_after_notice", "records_after_notice")
    government = {g["org_id"]: g for g in found["report"]["government"]}
    assert {org: tuple(g[n] for n in names) for org, g in government.items()} == split_per_call(stream)
    council = government["gov-city-council"]
    assert tuple(council[n] for n in names) == (4, 7 + 8 + 9 + 10, 4, 11 + 12 + 13 + 14)
    assert (council["first_seen"], council["last_seen"]) == (COUNCIL[0], COUNCIL[-1])
    assert government["gov-intel-agency"]["notice_first"] is False
    assert government["gov-statistics-office"]["notice_first"] is True


def test_no_delta_of_the_notice_hour_mixes_calls_before_and_after_notice_and_each_names_its_input(
    ledger_db: LedgerDb, kafka_bootstrap: str, billable_topics: tuple[str, str]
) -> None:
    produce(kafka_bootstrap, billable_topics[0], aggregated(calls()))
    consumer = LedgerConsumer(settings_for(kafka_bootstrap, ledger_db, billable_topics))
    consumer.drain(timeout=120)
    consumer.close()
    rows = ledger_db.rows(
        """SELECT government_notified, calls, first_event_at, last_event_at, source_topic,
                  source_last_offset - source_first_offset >= calls - 1, occurred_at, source_event_id
           FROM usage_entries WHERE org_id = 'gov-city-council' AND period_start = %s""",
        (COUNCIL_NOTICE.replace(minute=0),),
    )
    assert len(rows) >= 2
    assert sum(r[1] for r in rows if r[0] is False) == 4 and sum(r[1] for r in rows if r[0] is True) == 3
    assert all(last <= COUNCIL_NOTICE for notified, _, _, last, *_ in rows if not notified)
    assert all(first > COUNCIL_NOTICE for notified, _, first, *_ in rows if notified)
    assert {r[4:] for r in rows} == {(INPUT, True, None, None)}
    with url_connector(ledger_db.app_url)() as conn:
        inside = usage_query.parse_query({"licensee": "omnisoft", "from": "2026-10-10T12:15:00Z",
                                          "to": "2026-10-10T13:00:00Z", "group_by": "org"})  # fmt: skip
        assert usage_query.run(conn, inside)["exact"] is False  # the before-notice calls straddle 12:15
        hour = usage_query.parse_query({"licensee": "omnisoft", "from": "2026-10-10T12:00:00Z",
                                        "to": "2026-10-10T13:00:00Z", "group_by": "org"})  # fmt: skip
        assert usage_query.run(conn, hour)["exact"] is True
