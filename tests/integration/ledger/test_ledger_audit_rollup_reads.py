"""The audit report's exposure, group and shared-org figures, its chain heads and `tollgate report`'s licensee
list read the rollup (migration 0012), not the deltas: on PostgreSQL their figures equal the raw deltas'
sums worked out here in Python (per-call and aggregated deltas, rows stamped past their hour and across
the month's end, late usage of an invoiced month, rows of the reader's own open transaction), and the rows
they read from `usage_entries` stay the same when a month gets more deltas."""

from __future__ import annotations

import contextlib
import io
import random
import uuid
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from ledger_support import LedgerDb

from services.cli import main
from services.core.agreements import parse_agreement
from services.core.clock import FixedClock
from services.core.events import UsageRecorded
from services.core.month import Month
from services.ledger.adapters.postgres import exposure_store, group_store
from services.ledger.adapters.postgres.agreements_store import insert_agreement
from services.ledger.adapters.postgres.audit_data import audit_facts
from services.ledger.adapters.postgres.db import url_connector
from services.ledger.adapters.postgres.invoices import Invoicer
from services.ledger.adapters.postgres.usage_licensees import LICENSEES, month_licensees
from services.ledger.domain.catalogue import default_catalogue
from services.ledger.domain.codec import USAGE_COLUMNS, to_row

pytestmark = pytest.mark.integration

START, END = datetime(2026, 8, 20, tzinfo=UTC), datetime(2026, 10, 12, tzinfo=UTC)
SEPT = Month(2026, 9)
ORGS = {"c-1": "commercial", "c-2": "commercial", "gov-a": "government"}  # both licensees serve each
# Every delta's tuples read from usage_entries' partitions and their indexes, in this transaction.
ROWS_READ = """SELECT coalesce(sum(pg_stat_get_xact_tuples_returned(o)
                                  + pg_stat_get_xact_tuples_fetched(o)), 0)
    FROM (SELECT inhrelid FROM pg_inherits WHERE inhparent = 'usage_entries'::regclass
          UNION ALL SELECT indexrelid FROM pg_index WHERE indrelid IN
              (SELECT inhrelid FROM pg_inherits WHERE inhparent = 'usage_entries'::regclass)) AS r (o)"""


def agreement(licensee: str) -> dict[str, Any]:
    """An agreement with a fee, records overage and a notice of its government org before the period."""
    return {
        "licensee_id": licensee, "name": licensee, "effective_from": "2026-01-01T00:00:00Z",
        "effective_to": None, "government_use": "notice_required",
        "plan": {"monthly_fee_minor": 100_000, "annual_fee_minor": 0, "currency": "USD",
                 "included_records": 10_000, "overage_per_1000_records_minor": 25},
        "limits": {"calls_per_month": 10_000_000, "records_per_month": 100_000_000,
                   "calls_per_minute": 50_000, "warning_ratio": 0.8, "severe_ratio": 1.5},
        "apps": [{"app_id": f"app-{a}", "use_case": "Test"} for a in range(3)],
        "government_notices": [{"org_id": "gov-a", "notified_at": "2026-08-01T00:00:00Z",
                                "use_case": "Statistics"}],
    }  # fmt: skip


def deltas(rng: random.Random, count: int, aligned: bool = False) -> list[UsageRecorded]:
    """Aggregated deltas (calls inside their UTC hour) of two licensees from August 20 to October 12; unless
    `aligned`, also per-call rows, some stamped 70 minutes after their hour began (another producer's),
    several of them across the end of September or of August."""
    out = []
    for i in range(count):
        at = START + timedelta(seconds=rng.randrange(int((END - START).total_seconds())))
        if not aligned and i % 15 == 0:
            at = rng.choice([SEPT.end, SEPT.start]) - timedelta(minutes=rng.randrange(1, 50))
        hour = at.replace(minute=0, second=0, microsecond=0)
        org = rng.choice(sorted(ORGS))
        key = (rng.choice(["lic-a", "lic-b"]), f"app-{rng.randrange(3)}", hour, hour + timedelta(hours=1))
        calls, records = rng.randrange(1, 40), rng.randrange(0, 900)
        if aligned or i % 3:
            first = hour + timedelta(seconds=rng.randrange(1800))
            last = first + timedelta(seconds=rng.randrange(1, 1800))
            out.append(UsageRecorded(str(uuid.uuid4()), *key, calls, records, org_id=org, org_type=ORGS[org],
                                     first_event_at=first, last_event_at=last,
                                     government_notified=True if ORGS[org] == "government" else None,
                                     reference=("api-calls", 0, i * 100, i * 100 + calls)))  # fmt: skip
        else:
            stamped = at + timedelta(minutes=70) if i % 2 else at
            out.append(UsageRecorded(str(uuid.uuid4()), *key, 1, records, occurred_at=stamped, org_id=org,
                                     org_type=ORGS[org]))  # fmt: skip
    return out


def insert(conn: psycopg.Connection, usages: Iterable[UsageRecorded]) -> None:
    """Store deltas in `usage_entries` through its triggers, in the caller's transaction."""
    rows = [to_row(usage, "test.direct", 0, offset) for offset, usage in enumerate(usages)]
    marks = ", ".join(["%s"] * len(USAGE_COLUMNS))
    with conn.cursor() as cursor:
        cursor.executemany(f"INSERT INTO usage_entries ({', '.join(USAGE_COLUMNS)}) VALUES ({marks})", rows)  # noqa: S608 # fmt: skip


def sums_by_month(usages: Iterable[UsageRecorded], licensee: str) -> dict[Month, tuple[int, int]]:
    """Calls and records of a licensee's deltas per month of bucket start: the raw truth."""
    found: dict[Month, list[int]] = defaultdict(lambda: [0, 0])
    for usage in usages:
        if usage.licensee_id == licensee:
            found[Month.of(usage.period_start)][0] += usage.calls
            found[Month.of(usage.period_start)][1] += usage.records
    return {month: (calls, records) for month, (calls, records) in found.items()}


def exposure_usage(conn: psycopg.Connection, licensee: str) -> dict[Month, tuple[int, int]]:
    """The audit report's exposure section: metered calls and records per month."""
    found = exposure_store.period_exposure(conn, licensee, START, END, default_catalogue())
    return {Month.parse(m["month"]): (m["usage"]["calls"], m["usage"]["records"]) for m in found}


def expected_exposure(usages: list[UsageRecorded], licensee: str, invoiced: set[Month]) -> dict[Month, Any]:
    """Per month of the period with usage or an invoice: the whole month's sums of its deltas."""
    whole = sums_by_month(usages, licensee)
    months = {Month.of(u.period_start) for u in usages if u.licensee_id == licensee
              and Month.of(START).start <= u.period_start < END} | invoiced  # fmt: skip
    return {month: whole.get(month, (0, 0)) for month in months}


@pytest.fixture
def stored(ledger_db: LedgerDb) -> list[UsageRecorded]:
    """Both licensees' deltas and lic-a's agreement stored; lic-a's September invoiced; then late usage."""
    rng = random.Random(13)  # noqa: S311 - reproducible test data
    first, late = deltas(rng, 1500), [d for d in deltas(rng, 300) if Month.of(d.period_start) == SEPT]
    with psycopg.connect(ledger_db.owner_url) as conn:
        insert(conn, first)
        insert_agreement(conn, parse_agreement(agreement("lic-a")))
    clock = FixedClock(datetime(2026, 10, 5, tzinfo=UTC))
    Invoicer(url_connector(ledger_db.app_url), clock, timedelta(hours=72)).issue("lic-a", SEPT)
    with psycopg.connect(ledger_db.owner_url) as conn:  # recorded after the invoice: late usage
        insert(conn, late)
    return first + late


def test_the_exposure_section_meters_each_month_exactly_as_the_raw_deltas_sum(
    ledger_db: LedgerDb, stored: list[UsageRecorded]
) -> None:
    with psycopg.connect(ledger_db.app_url) as conn:
        for licensee, invoiced in (("lic-a", {SEPT}), ("lic-b", set())):
            assert exposure_usage(conn, licensee) == expected_exposure(stored, licensee, invoiced), licensee
        assert exposure_store.known(conn, "lic-b") and not exposure_store.known(conn, "lic-nobody")


def test_rows_of_the_readers_own_open_transaction_are_in_the_figures_already(
    ledger_db: LedgerDb, stored: list[UsageRecorded]
) -> None:
    more = deltas(random.Random(7), 200)  # noqa: S311 - reproducible test data
    with psycopg.connect(ledger_db.owner_url) as conn:
        insert(conn, more)  # not committed: the rollup's statement trigger ran in this transaction
        assert exposure_usage(conn, "lic-b") == expected_exposure(stored + more, "lic-b", set())
        conn.rollback()
        assert exposure_usage(conn, "lic-b") == expected_exposure(stored, "lic-b", set())


def test_group_months_and_shared_orgs_equal_the_same_sums_over_the_raw_deltas(
    ledger_db: LedgerDb, stored: list[UsageRecorded]
) -> None:
    bounds = {"ids": ["lic-a", "lic-b"], "start": START, "end": END}
    with psycopg.connect(ledger_db.app_url) as conn:
        pairs = group_store.served(conn, bounds)
        raw_served = conn.execute(group_store.SERVED.replace("usage_rollup", "usage_entries"), bounds)
        assert list(zip(pairs["orgs"], pairs["months"], strict=True)) == raw_served.fetchall()
        for query, values in ((group_store.MONTHS, bounds), (group_store.SHARED, pairs)):
            rollup = sorted(conn.execute(query, values).fetchall())
            raw = sorted(conn.execute(query.replace("usage_rollup", "usage_entries"), values).fetchall())
            assert rollup == raw and len(rollup) >= 6
        shared = group_store.shared_org_facts(conn, ["lic-a"], START, END)
    truth: dict[tuple[str, str | None, str], int] = defaultdict(int)
    for usage in stored:
        if START <= usage.period_start < END:
            truth[(str(Month.of(usage.period_start)), usage.org_id, usage.licensee_id)] += usage.calls
    served = {(s["month"], s["org_id"], o["licensee_id"]): o["calls"] for s in shared for o in s["licensees"]}
    assert served == {key: calls for key, calls in truth.items() if key[:2] in {k[:2] for k in served}}
    assert {org for _, org, _ in served} == set(ORGS)


def test_tollgate_report_lists_every_licensee_with_usage_or_an_agreement_in_the_month(
    ledger_db: LedgerDb, stored: list[UsageRecorded]
) -> None:
    with psycopg.connect(ledger_db.app_url) as conn:
        assert month_licensees(conn, SEPT) == ["lic-a", "lic-b"]
        assert month_licensees(conn, Month(2026, 11)) == ["lic-a"]  # its agreement, no usage
        assert month_licensees(conn, Month(2026, 7)) == ["lic-a"]
        raw = LICENSEES.replace("usage_rollup", "usage_entries")
        for month in (SEPT, Month(2026, 8), Month(2026, 10), Month(2026, 11)):
            values = {"start": month.start, "end": month.end}
            assert conn.execute(LICENSEES, values).fetchall() == conn.execute(raw, values).fetchall()
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["report", "--month", "2026-09", "--database-url", ledger_db.app_url]) == 0
    sections = printed.getvalue().split("== ")[1:]
    assert [section.splitlines()[0] for section in sections] == ["lic-a, 2026-09", "lic-b, 2026-09"]
    usage = sections[1].split("usage:\n")[1].split("\ninvoice")[0].splitlines()[1:]  # under its header
    calls = sum(int(line.split()[1].replace(",", "")) for line in usage)
    assert calls == sums_by_month(stored, "lic-b")[SEPT][0]


def rows_read(conn: psycopg.Connection, read: Any) -> int:
    """Tuples of usage_entries that `read(conn)` made PostgreSQL read (no parallel workers: the leader's
    transaction statistics would not see theirs)."""
    conn.execute("SET LOCAL max_parallel_workers_per_gather = 0")
    before = conn.execute(ROWS_READ).fetchone()
    read(conn)
    after = conn.execute(ROWS_READ).fetchone()
    conn.rollback()
    assert before is not None and after is not None
    return int(after[0]) - int(before[0])


def rows_read_twice(db: LedgerDb, seed: int, reads: dict[str, Any]) -> tuple[list[dict[str, int]], int]:
    """Rows of usage_entries each read made PostgreSQL read with lic-a's agreement and 800 aligned deltas,
    then with 800 more (twice the deltas); and how many partitions usage_entries has."""
    rng = random.Random(seed)  # noqa: S311 - reproducible test data
    with psycopg.connect(db.owner_url) as conn:
        insert_agreement(conn, parse_agreement(agreement("lic-a")))
        conn.commit()
        found = []
        for _ in range(2):  # the second time, twice the deltas
            insert(conn, deltas(rng, 800, aligned=True))
            conn.commit()
            partitions = conn.execute("SELECT count(*) FROM pg_inherits "
                                      "WHERE inhparent = 'usage_entries'::regclass").fetchone()  # fmt: skip
            found.append({name: rows_read(conn, read) for name, read in reads.items()})
    return found, int(partitions[0]) if partitions else 0


def test_the_audit_report_and_licensee_list_read_no_more_deltas_when_a_month_has_more(
    ledger_db: LedgerDb,
) -> None:
    found, partitions = rows_read_twice(ledger_db, 21, {
        "exposure": lambda c: exposure_store.period_exposure(c, "lic-a", START, END, default_catalogue()),
        "audit": lambda c: audit_facts(c, "lic-a", START, END),
        "licensees": lambda c: month_licensees(c, SEPT),
    })  # fmt: skip
    assert found[0] == found[1]
    assert found[1]["exposure"] == found[1]["licensees"] == 0
    assert found[1]["audit"] <= partitions  # the chain head: one per partition
