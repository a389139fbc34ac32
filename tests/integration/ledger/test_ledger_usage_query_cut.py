"""`GET /v1/usage` on PostgreSQL, on one key the rollup cannot take whole (a per-call row stamped past its
hour lies in the next hour) beside one it can: each call counts once, in the window of its event time, the
cut key's rows read one by one and the whole key's sums from the rollup, neither skipped nor counted twice."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from ledger_support import LedgerDb, hour_bucket, insert_usage

from services.core.events import ApiCall, UsageRecorded
from services.ledger.adapters.postgres import usage_query

pytestmark = pytest.mark.integration

TEN = datetime(2026, 10, 1, 10, tzinfo=UTC)
ELEVEN, NOON = TEN + timedelta(hours=1), TEN + timedelta(hours=2)


def call(n: int, minutes: int, records: int) -> UsageRecorded:
    """A per-call delta of app-1 in the 10:00 bucket, its event `minutes` after 10:00."""
    at = TEN + timedelta(minutes=min(minutes, 59))
    delta = hour_bucket(ApiCall(f"c-{n}", "gw", at, "lic-c", "app-1", "/x", "GET", 200, records, 10, "c-1",
                                "commercial"))  # fmt: skip
    return dataclasses.replace(delta, occurred_at=TEN + timedelta(minutes=minutes))


def aggregated(usage_id: str, app: str, minutes: int, calls: int, records: int) -> UsageRecorded:
    """An aggregated delta of the 10:00 bucket whose calls lie from `minutes` to 10 minutes later."""
    first = TEN + timedelta(minutes=minutes)
    return UsageRecorded(usage_id, "lic-c", app, TEN, ELEVEN, calls, records, org_id="c-1",
                         org_type="commercial", first_event_at=first,
                         last_event_at=first + timedelta(minutes=10),
                         reference=("tollgate.api-calls.v1", 0, calls, 2 * calls))  # fmt: skip


# app-1's key: calls at 10:20 and 10:30-10:40, and another producer's call stamped 11:10 (its at_max past
# the hour). app-2's key lies inside 10:05-10:15.
DELTAS = [call(1, 20, 2), aggregated("agg-1", "app-1", 30, 5, 50), call(2, 70, 4),
          aggregated("agg-2", "app-2", 5, 7, 70)]  # fmt: skip


@pytest.fixture
def conn(ledger_db: LedgerDb) -> Iterator[psycopg.Connection]:
    insert_usage(ledger_db, DELTAS)
    assert ledger_db.scalar("SELECT count(*) FROM usage_rollup WHERE at_max >= period_end") == 1
    with psycopg.connect(ledger_db.app_url) as connection:
        yield connection


def rows(conn: psycopg.Connection, start: datetime, end: datetime, window: str | None) -> list[Any]:
    """The answer's (window start, app, calls, records), checked exact and whole."""
    query = usage_query.UsageQuery("lic-c", start, end, window, ("app",), 100)
    answer = usage_query.run(conn, query)
    assert (answer["exact"], answer["truncated"]) == (True, False)
    return [(r["window_start"], r["app_id"], r["calls"], r["records"]) for r in answer["rows"]]


def test_a_key_whose_calls_lie_in_two_hours_counts_each_call_in_the_hour_of_its_event(
    conn: psycopg.Connection,
) -> None:
    assert rows(conn, TEN, NOON, "hour") == [(TEN, "app-1", 6, 52), (TEN, "app-2", 7, 70),
                                             (ELEVEN, "app-1", 1, 4)]  # fmt: skip


def test_a_bound_leaves_out_the_calls_on_its_other_side_and_keeps_the_rest_of_the_key_once(
    conn: psycopg.Connection,
) -> None:
    assert rows(conn, TEN, ELEVEN, None) == [(TEN, "app-1", 6, 52), (TEN, "app-2", 7, 70)]
    half_past = TEN + timedelta(minutes=30)
    assert rows(conn, half_past, half_past + timedelta(hours=1), None) == [(half_past, "app-1", 6, 54)]


def test_a_range_that_cuts_no_key_counts_each_key_once_from_the_rollup(conn: psycopg.Connection) -> None:
    assert rows(conn, TEN, NOON, None) == [(TEN, "app-1", 7, 56), (TEN, "app-2", 7, 70)]
    assert rows(conn, TEN, NOON, "day") == [(TEN, "app-1", 7, 56), (TEN, "app-2", 7, 70)]
