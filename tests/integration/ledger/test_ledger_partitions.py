"""Month partitions of usage_entries (migration 0008) on the real PostgreSQL: made as months arrive, detached
with the chain still verifying, append-only on every partition, and no usage_id stored twice."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest
from ledger_support import LedgerDb, produce, settings_for

from services.cli import main as cli
from services.core.events import UsageRecorded
from services.ledger.adapters.kafka.consumer import LedgerConsumer, prepare_staging, store_usage
from services.ledger.adapters.postgres.chain_store import heads, verify
from services.ledger.adapters.postgres.partitions import MonthPartitions, attached, detach
from services.ledger.domain.codec import to_row

pytestmark = pytest.mark.integration

INVOICE = """INSERT INTO invoices (invoice_id, licensee_id, month, currency, total_minor, issued_at,
        pricing_rules) VALUES (%s, %s, %s, 'USD', 0, now(), 'test')"""
WHERE = "SELECT tableoid::regclass::text, count(*) FROM usage_entries GROUP BY 1 ORDER BY 1"


def delta(licensee: str, hour: datetime, n: int = 0, calls: int = 5) -> UsageRecorded:
    """An aggregated delta of `licensee` in the UTC hour starting at `hour`."""
    key = f"{licensee}|{hour.isoformat()}|{n}"
    return UsageRecorded(str(uuid.uuid5(uuid.NAMESPACE_URL, key)), licensee, "app-1", hour,
                         hour + timedelta(hours=1), calls, calls * 10, org_id="org-1", org_type="commercial",
                         first_event_at=hour + timedelta(minutes=1),
                         last_event_at=hour + timedelta(minutes=2),
                         reference=("tollgate.api-calls.v1", 0, 10 * n, 10 * n + calls - 1))  # fmt: skip


def month(year: int, mon: int, day: int = 1, hour: int = 0) -> datetime:
    return datetime(year, mon, day, hour, tzinfo=UTC)


def write(db: LedgerDb, usages: list[UsageRecorded], ensure: bool = True) -> int:
    """The consumer's write as the service role: partitions first, then COPY into staging and its INSERT."""
    with psycopg.connect(db.app_url) as conn:
        if ensure:
            MonthPartitions().ensure(conn, (u.period_start for u in usages))
        prepare_staging(conn)
        rows = [to_row(usage, "t.billable", 0, offset) for offset, usage in enumerate(usages)]
        with conn.cursor() as cursor:
            return store_usage(cursor, rows)


def test_the_consumer_creates_the_partition_of_each_month_as_it_arrives(
    ledger_db: LedgerDb, kafka_bootstrap: str, billable_topics: tuple[str, str]
) -> None:
    usages = [delta("acme", month(2026, 7, 3, h), h) for h in range(3)] + [delta("acme", month(2026, 10, 9))]
    produce(kafka_bootstrap, billable_topics[0], usages)
    with psycopg.connect(ledger_db.owner_url) as conn:
        before = attached(conn)
    assert "usage_entries_2026_07" not in before and "usage_entries_default" in before
    consumer = LedgerConsumer(settings_for(kafka_bootstrap, ledger_db, billable_topics))
    try:
        consumer.drain(timeout=60)
    finally:
        consumer.close()
    with psycopg.connect(ledger_db.owner_url) as conn:
        after = attached(conn)
    assert "2026-07-01" in after["usage_entries_2026_07"] and "2026-08-01" in after["usage_entries_2026_07"]
    assert ledger_db.rows(WHERE) == [("usage_entries_2026_07", 3), ("usage_entries_2026_10", 1)]


def test_a_detached_month_leaves_a_chain_that_verifies_and_continues(
    ledger_db: LedgerDb, capsys: pytest.CaptureFixture[str]
) -> None:
    # acme: August, September, a late August delta, October; bolt: August only (its tail is archived).
    assert write(ledger_db, [delta("acme", month(2026, 8, 2, h), h) for h in range(4)]) == 4
    assert write(ledger_db, [delta("acme", month(2026, 9, 5, h), h) for h in range(3)]) == 3
    assert write(ledger_db, [delta("acme", month(2026, 8, 31, 23), 9), delta("bolt", month(2026, 8, 7))]) == 2
    assert write(ledger_db, [delta("acme", month(2026, 10, 1, 1))]) == 1
    with psycopg.connect(ledger_db.app_url) as conn:
        before = heads(conn, "bolt")[1]
    with psycopg.connect(ledger_db.owner_url) as conn:
        with pytest.raises(psycopg.errors.RaiseException, match="not invoiced for acme, bolt"):
            detach(conn, date(2026, 8, 1))
        conn.execute(INVOICE, ("INV-acme-2026-08", "acme", date(2026, 8, 1)))
        conn.execute(INVOICE, ("INV-bolt-2026-08", "bolt", date(2026, 8, 1)))
        conn.commit()
        assert detach(conn, date(2026, 8, 1)) == 6
        assert "usage_entries_2026_08" not in attached(conn)
    runs = ledger_db.rows(
        "SELECT licensee_id, first_seq, last_seq, rows FROM usage_archived_links ORDER BY 1, 2"
    )
    assert runs == [("acme", 1, 4, 4), ("acme", 8, 8, 1), ("bolt", 1, 1, 1)]
    with psycopg.connect(ledger_db.app_url) as conn:
        found = verify(conn)
        assert heads(conn, "bolt")[1] == before and before["table"] == "usage_entries"
    assert found["intact"], found["first_break"]
    chains = {
        c["licensee_id"]: (c["rows"], c["head_seq"]) for c in found["chains"] if c["table"] == "usage_entries"
    }
    assert chains == {"acme": (4, 9), "bolt": (0, 1)}
    # New rows continue both chains, bolt's from its archived tail; the CLI agrees.
    assert write(ledger_db, [delta("acme", month(2026, 10, 2)), delta("bolt", month(2026, 10, 3))]) == 2
    assert cli(["ledger", "verify", "--database-url", ledger_db.app_url]) == 0
    assert "intact: 8 rows" in capsys.readouterr().out
    newest = "SELECT licensee_id, chain_seq FROM usage_entries WHERE period_start >= '2026-10-02' ORDER BY 1"
    assert ledger_db.rows(newest) == [("acme", 10), ("bolt", 2)]


def test_a_removed_row_next_to_an_archived_run_is_still_a_break(ledger_db: LedgerDb) -> None:
    write(ledger_db, [delta("acme", month(2026, 8, 2, h), h) for h in range(2)])
    write(ledger_db, [delta("acme", month(2026, 9, 2, h), h) for h in range(3)])
    with psycopg.connect(ledger_db.owner_url) as conn:
        conn.execute(INVOICE, ("INV-acme-2026-08", "acme", date(2026, 8, 1)))
        conn.commit()
        detach(conn, date(2026, 8, 1))
        conn.execute("ALTER TABLE usage_entries DISABLE TRIGGER usage_entries_append_only_rows")
        conn.execute("DELETE FROM usage_entries WHERE chain_seq = 3")  # the row right after the archived run
        conn.commit()
    with psycopg.connect(ledger_db.app_url) as conn:
        broken = verify(conn, "acme")["first_break"]
    assert broken is not None and broken["chain_seq"] == 4 and "missing" in broken["reason"]


def test_a_month_not_closed_or_not_attached_cannot_be_detached(ledger_db: LedgerDb) -> None:
    this_month = datetime.now(UTC).date().replace(day=1)
    with (
        psycopg.connect(ledger_db.owner_url) as conn,
        pytest.raises(psycopg.errors.RaiseException, match="is not closed"),
    ):
        detach(conn, this_month)
    with (
        psycopg.connect(ledger_db.owner_url) as conn,
        pytest.raises(psycopg.errors.RaiseException, match="no attached partition"),
    ):
        detach(conn, date(2020, 1, 1))
    with (
        psycopg.connect(ledger_db.app_url) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):  # the service role may not detach at all
        detach(conn, date(2020, 1, 1))


@pytest.mark.parametrize("statement", ["UPDATE {t} SET calls = calls + 1", "DELETE FROM {t}", "TRUNCATE {t}"])
def test_every_partition_refuses_changes_even_to_the_owner(ledger_db: LedgerDb, statement: str) -> None:
    write(ledger_db, [delta("acme", month(2026, 9, 2)), delta("acme", month(2026, 9, 3))])
    write(ledger_db, [delta("acme", month(2025, 3, 2))], ensure=False)  # a month without partition: DEFAULT
    for table in ("usage_entries", "usage_entries_2026_09", "usage_entries_default"):
        with (
            psycopg.connect(ledger_db.owner_url) as conn,
            pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"),
        ):
            conn.execute(statement.format(t=table))
    with (
        psycopg.connect(ledger_db.app_url) as conn,  # partitions: through the parent only
        pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"),
    ):
        conn.execute("SELECT count(*) FROM usage_entries_2026_09")
    assert ledger_db.scalar("SELECT sum(calls) FROM usage_entries") == 15


def test_a_detached_month_and_its_record_stay_append_only(ledger_db: LedgerDb) -> None:
    write(ledger_db, [delta("acme", month(2026, 8, 2))])
    with psycopg.connect(ledger_db.owner_url) as conn:
        conn.execute(INVOICE, ("INV-acme-2026-08", "acme", date(2026, 8, 1)))
        conn.commit()
        detach(conn, date(2026, 8, 1))
    for statement in ("UPDATE usage_entries_2026_08 SET calls = 0", "DELETE FROM usage_entries_2026_08",
                      "TRUNCATE usage_entries_2026_08", "UPDATE usage_archived_links SET rows = 2",
                      "DELETE FROM usage_archived_months"):  # fmt: skip
        with (
            psycopg.connect(ledger_db.owner_url) as conn,
            pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"),
        ):
            conn.execute(statement)


def test_no_usage_id_is_stored_twice_across_months(ledger_db: LedgerDb) -> None:
    usages = [delta("acme", month(2026, m, 2, h), h) for m in (8, 9, 10) for h in range(3)]
    assert write(ledger_db, usages) == 9
    assert write(ledger_db, usages[::-1]) == 0  # a replay, in any order
    # The same ids in another month's partition are left out too: the filter reads every partition.
    moved = [dataclasses.replace(u, period_start=month(2026, 11), period_end=month(2026, 11, 1, 1),
                                 first_event_at=None, last_event_at=None) for u in usages]  # fmt: skip
    assert write(ledger_db, moved) == 0
    assert ledger_db.scalar("SELECT count(DISTINCT usage_id) = count(*) AND count(*) = 9 FROM usage_entries")
    with psycopg.connect(ledger_db.app_url) as conn:
        assert verify(conn)["intact"]


def test_a_month_whose_rows_landed_in_the_default_partition_stays_there(ledger_db: LedgerDb) -> None:
    assert write(ledger_db, [delta("acme", month(2025, 3, 2))], ensure=False) == 1
    assert write(ledger_db, [delta("acme", month(2025, 3, 3))]) == 1  # ensure leaves the month to DEFAULT
    assert ledger_db.rows(WHERE) == [("usage_entries_default", 2)]
    with psycopg.connect(ledger_db.app_url) as conn:
        assert verify(conn)["intact"]
