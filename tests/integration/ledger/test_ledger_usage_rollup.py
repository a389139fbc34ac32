"""usage_rollup (migration 0012) on the real PostgreSQL: every read the invoice, the usage report and
/v1/usage make from it equals the same read made row by row over usage_entries (the SQL before 0012), on
bounds inside hours, notices inside a key's span, per-call and aggregated rows, many statements per key;
and verify names a rollup that was edited."""

from __future__ import annotations

import dataclasses
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from ledger_support import LedgerDb, hour_bucket, insert_usage
from psycopg import sql

from services.core.events import ApiCall, UsageRecorded
from services.ledger.adapters.postgres import usage_query, usage_sums
from services.ledger.adapters.postgres.chain_store import verify
from services.ledger.domain.codec import USAGE_COLUMNS, to_row

pytestmark = pytest.mark.integration

START = datetime(2026, 9, 29, tzinfo=UTC)
END = datetime(2026, 10, 3, tzinfo=UTC)
AT = "coalesce(u.occurred_at, u.first_event_at, u.period_start)"
# The per-row reads of migration 0008 and before: the definition of every figure.
SEGMENTS_BY_ROW = f"""
    SELECT s.idx, coalesce(sum(u.calls), 0), coalesce(sum(u.records), 0) FROM usage_entries u
    LEFT JOIN unnest(%(lo)s::timestamptz[], %(hi)s::timestamptz[]) WITH ORDINALITY AS s(lo, hi, idx)
      ON {AT} >= s.lo AND {AT} < s.hi
    WHERE u.licensee_id = %(licensee)s AND u.period_start >= %(start)s AND u.period_start < %(end)s
    GROUP BY s.idx"""  # noqa: S608
APP_MONTHS_BY_ROW = """SELECT app_id, (date_trunc('month', period_start, 'UTC') AT TIME ZONE 'UTC')::date,
        sum(calls), sum(records) FROM usage_entries
    WHERE licensee_id = %s AND period_start >= %s AND period_start < %s GROUP BY 1, 2"""
GOVERNMENT_BY_ROW = f"""SELECT u.org_id, min(u.first_at), max(u.last_at), sum(u.calls), sum(u.records),
        coalesce(sum(u.calls) FILTER (WHERE u.after), 0), coalesce(sum(u.records) FILTER (WHERE u.after), 0)
    FROM (SELECT u.org_id, u.calls, u.records,
                 coalesce(u.first_event_at, u.occurred_at, u.period_start) AS first_at,
                 coalesce(u.last_event_at, u.occurred_at, u.period_start) AS last_at,
                 coalesce(u.government_notified, n.notified_at < {AT}) AS after
          FROM usage_entries u
          LEFT JOIN unnest(%s::text[], %s::timestamptz[]) AS n (org_id, notified_at) ON n.org_id = u.org_id
          WHERE u.licensee_id = %s AND u.org_type = 'government'
            AND u.period_start >= %s AND u.period_start < %s) AS u
    GROUP BY u.org_id"""  # noqa: S608


def usage_by_row(query: usage_query.UsageQuery) -> sql.Composed:
    """/v1/usage's statement before 0012: every row judged by its own event time, its window clipped."""
    dims = [sql.Identifier(usage_query.DIMENSIONS[n]) for n in query.group_by]
    at = sql.SQL(AT.replace("u.", ""))
    window = sql.SQL("date_trunc({}, {}, 'UTC')").format(sql.Literal(query.window), at) if query.window \
        else sql.SQL("NULL::timestamptz")  # fmt: skip
    keys = sql.SQL(", ").join([sql.Identifier("licensee_id"), sql.SQL("window_start"), *dims])
    step = sql.SQL("interval {}").format(sql.Literal(f"1 {query.window}")) if query.window \
        else sql.SQL("NULL")  # fmt: skip
    return sql.SQL(
        """SELECT licensee_id, greatest(window_start, %(start)s),
                  least((window_start AT TIME ZONE 'UTC' + {step}) AT TIME ZONE 'UTC', %(end)s){dims},
                  sum(calls)::bigint, sum(records)::bigint FROM (
            SELECT *, {window} AS window_start FROM usage_entries WHERE licensee_id = %(licensee)s
              AND period_start >= date_trunc('hour', %(start)s::timestamptz, 'UTC')
              AND period_start < %(end)s AND {at} >= %(start)s AND {at} < %(end)s) AS u
        GROUP BY {keys} ORDER BY window_start, {keys} LIMIT %(limit)s"""
    ).format(
        window=window, at=at, keys=keys, step=step, dims=sql.SQL("").join(sql.SQL(", ") + d for d in dims)
    )


def deltas(rng: random.Random) -> list[UsageRecorded]:
    """Per-call deltas at any instant, and aggregated ones over parts of their hour, of two licensees."""
    out = []
    for i in range(400):
        at = START + timedelta(seconds=rng.randrange(int((END - START).total_seconds())))
        org = rng.choice(["gov-a", "gov-b", "c-1", "c-2"])
        kind = "government" if org.startswith("gov") else "commercial"
        licensee, app = rng.choice(["lic-a", "lic-b"]), rng.choice(["app-1", "app-2", "app-3"])
        call = ApiCall(
            f"r-{i}", "gw", at, licensee, app, "/x", "GET", 200, rng.randrange(1, 9), 10, org, kind
        )
        delta = hour_bucket(call)
        if i % 37 == 0:  # another producer's per-call row whose event time is not in its bucket
            delta = dataclasses.replace(delta, occurred_at=at + timedelta(minutes=90))
        elif i % 2:  # an aggregated delta: several calls between two instants of the hour, notice flag set
            first = delta.period_start + timedelta(seconds=rng.randrange(1800))
            delta = UsageRecorded(str(uuid.uuid4()), licensee, app, delta.period_start, delta.period_end,
                                  rng.randrange(1, 50), rng.randrange(0, 500), org_id=org, org_type=kind,
                                  first_event_at=first,
                                  last_event_at=first + timedelta(seconds=rng.randrange(1800)),
                                  government_notified=(rng.random() < 0.5) if kind == "government" else None,
                                  reference=("tollgate.api-calls.v1", 0, i * 100, i * 100 + 49))  # fmt: skip
        out.append(delta)
    return out + pinned_cuts()


def pinned_cuts() -> list[UsageRecorded]:
    """Keys of lic-a that the bounds and windows below cut whatever the seed: so the statement's row-by-row
    part is exercised, not only its whole-key sums."""
    hour = datetime(2026, 9, 30, 13, tzinfo=UTC)  # MID, 13:17:05, falls between these two deltas' calls
    end = hour + timedelta(hours=1)
    inside = [
        UsageRecorded(
            str(uuid.uuid5(uuid.NAMESPACE_URL, f"pin-{n}")), "lic-a", "app-1", hour, end,
            5, 50, org_id="c-1", org_type="commercial", first_event_at=hour + timedelta(minutes=lo),
            last_event_at=hour + timedelta(minutes=lo + 5), reference=("tollgate.api-calls.v1", 1, n, n + 4),
        )
        for n, lo in ((10, 5), (20, 20))
    ]  # fmt: skip
    late = datetime(2026, 9, 30, 23, 40, tzinfo=UTC)  # a per-call row stamped past midnight: crosses a day
    calls = [
        ApiCall(f"pin-{n}", "gw", late, "lic-a", "app-2", "/x", "GET", 200, 3, 10, "c-2", "commercial")
        for n in range(2)
    ]
    stamped = dataclasses.replace(hour_bucket(calls[1]), occurred_at=late + timedelta(minutes=90))
    return [*inside, hour_bucket(calls[0]), stamped]


@pytest.fixture
def mixed(ledger_db: LedgerDb) -> LedgerDb:
    """The deltas in many statements (one per row: later ones update the rollup) and one multi-row one."""
    rows = deltas(random.Random(16))  # noqa: S311 - reproducible test data
    insert_usage(ledger_db, rows[:300])
    with psycopg.connect(ledger_db.owner_url) as conn:
        conn.execute("CREATE TEMP TABLE more (LIKE usage_entries INCLUDING DEFAULTS)")
        insert_usage_into(conn, "more", rows[300:])
        conn.execute("INSERT INTO usage_entries SELECT * FROM more ORDER BY licensee_id")
    return ledger_db


def insert_usage_into(conn: psycopg.Connection, table: str, usages: list[UsageRecorded]) -> None:
    marks = ", ".join(["%s"] * len(USAGE_COLUMNS))
    statement = f"INSERT INTO {table} ({', '.join(USAGE_COLUMNS)}) VALUES ({marks})"  # noqa: S608
    with conn.cursor() as cursor:
        cursor.executemany(statement, [to_row(u, "test.more", 1, n) for n, u in enumerate(usages)])


def both(db: LedgerDb, rolled: Any, by_row: Any, params: Any) -> tuple[list[Any], list[Any]]:
    with psycopg.connect(db.app_url) as conn:
        conn.execute(usage_sums.READ_SETTINGS)
        return sorted(conn.execute(rolled, params).fetchall(), key=repr), sorted(
            conn.execute(by_row, params).fetchall(), key=repr)  # fmt: skip


MID = datetime(2026, 9, 30, 13, 17, 5, tzinfo=UTC)
BOUNDS = [(START, END), (MID, END), (START, MID), (MID, MID + timedelta(hours=30, minutes=7))]


@pytest.mark.parametrize(("lo", "hi"), [([START], [END]), ([START, MID], [MID, END]),
                                        ([MID], [MID + timedelta(hours=20)]), ([], [])])  # fmt: skip
def test_invoice_segments_from_the_rollup_equal_the_rows(
    mixed: LedgerDb, lo: list[Any], hi: list[Any]
) -> None:
    for month in ((START, datetime(2026, 10, 1, tzinfo=UTC)), (datetime(2026, 10, 1, tzinfo=UTC), END)):
        params = {"lo": lo, "hi": hi, "licensee": "lic-a", "start": month[0], "end": month[1]}
        rolled, by_row = both(mixed, usage_sums.USAGE_BY_SEGMENT, SEGMENTS_BY_ROW, params)
        assert rolled == by_row and by_row


@pytest.mark.parametrize(("start", "end"), BOUNDS)
def test_the_usage_report_from_the_rollup_equals_the_rows(
    mixed: LedgerDb, start: datetime, end: datetime
) -> None:
    rolled, by_row = both(mixed, usage_sums.APP_MONTHS, APP_MONTHS_BY_ROW, ("lic-b", start, end))
    assert rolled == by_row and by_row
    for notices in ([MID, MID + timedelta(minutes=30)], [START - timedelta(days=9), END], [None, MID]):
        params = (["gov-a", "gov-b"], notices, "lic-b", start, end)
        rolled, by_row = both(mixed, usage_sums.GOVERNMENT, GOVERNMENT_BY_ROW, params)
        assert rolled == by_row and len(by_row) == 2


@pytest.mark.parametrize("window", [None, "hour", "day", "month"])
@pytest.mark.parametrize(("start", "end"), BOUNDS)
def test_usage_queries_from_the_rollup_equal_the_rows(
    mixed: LedgerDb, window: str | None, start: datetime, end: datetime
) -> None:
    for group_by in ((), ("app",), ("org", "org_type")):
        query = usage_query.UsageQuery("lic-a", start, end, window, group_by, 10_000)
        values = {"licensee": "lic-a", "start": start, "end": end, "limit": 10_001}
        rolled, by_row = both(mixed, usage_query.statement(query), usage_by_row(query), values)
        assert rolled == by_row and by_row


def test_the_rollup_holds_each_keys_sums_and_verify_names_an_edited_one(mixed: LedgerDb) -> None:
    assert mixed.scalar("SELECT sum(calls) FROM usage_rollup") == mixed.scalar(
        "SELECT sum(calls) FROM usage_entries"
    )
    assert mixed.scalar("SELECT count(*) FROM usage_rollup") < mixed.scalar(
        "SELECT count(*) FROM usage_entries"
    )
    with psycopg.connect(mixed.owner_url) as conn:
        assert verify(conn, None)["intact"]
    with psycopg.connect(mixed.owner_url) as conn:
        conn.execute("""UPDATE usage_rollup SET calls = calls + 1
                        WHERE ctid = (SELECT min(ctid) FROM usage_rollup WHERE licensee_id = 'lic-b')""")
    with psycopg.connect(mixed.owner_url) as conn:
        found = verify(conn, "lic-b")
    assert not found["intact"] and found["first_break"]["table"] == "usage_rollup"
    assert [b["reason"].split("; ")[1].split(":")[0] for b in found["breaks"]] == ["rollup", "rows"]
    with psycopg.connect(mixed.owner_url) as conn:
        assert verify(conn, "lic-a")["intact"]


def test_the_service_role_cannot_write_the_rollup(mixed: LedgerDb) -> None:
    with psycopg.connect(mixed.app_url) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("UPDATE usage_rollup SET calls = 0")


@pytest.mark.parametrize("window", ["hour", "day", "month"])
def test_the_fixture_holds_keys_cut_by_a_bound_inside_an_hour_and_by_a_window_edge(
    mixed: LedgerDb, window: str
) -> None:
    # Without such keys the equality tests above would compare whole-key sums only.
    by_bound = mixed.scalar(
        "SELECT count(*) FROM usage_rollup WHERE licensee_id = 'lic-a' AND at_min < %s AND at_max >= %s",
        (MID, MID),
    )
    by_window = mixed.scalar(
        """SELECT count(*) FROM usage_rollup WHERE licensee_id = 'lic-a'
           AND date_trunc(%s, at_min, 'UTC') <> date_trunc(%s, at_max, 'UTC')""",
        (window, window),
    )
    assert by_bound >= 1 and by_window >= 1
