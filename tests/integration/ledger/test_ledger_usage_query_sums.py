"""`GET /v1/usage` on PostgreSQL equals the sums of the raw deltas, worked out here in Python: per hour and
app, per day, app and org, per month and org type, across the September/October boundary, with keys whose
calls lie in two windows (the rollup cannot take those whole) and keys it can."""

from __future__ import annotations

import dataclasses
import random
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from ledger_support import LedgerDb, hour_bucket, insert_usage
from starlette.testclient import TestClient

from services.core.clock import FixedClock
from services.core.events import ApiCall, UsageRecorded
from services.core.month import Month
from services.core.tokens import InMemoryTokenStore
from services.ledger.adapters.http.api import create_app
from services.ledger.adapters.postgres import usage_query
from services.ledger.adapters.postgres.db import url_connector
from services.ledger.settings import LedgerSettings

pytestmark = pytest.mark.integration

START, END = datetime(2026, 9, 29, tzinfo=UTC), datetime(2026, 10, 3, tzinfo=UTC)
OCT1 = datetime(2026, 10, 1, tzinfo=UTC)
DIMENSIONS = {"app": "app_id", "org": "org_id", "org_type": "org_type"}
ORGS = {"c-1": "commercial", "c-2": "commercial", "gov-a": "government"}


def deltas(rng: random.Random) -> list[UsageRecorded]:
    """Per-call and aggregated deltas of two licensees, and per-call rows stamped 70 minutes after their
    bucket began (another producer's), so some keys' calls lie in two hours, days or months."""
    out = []
    for i in range(360):
        at = START + timedelta(seconds=rng.randrange(int((END - START).total_seconds())))
        if i % 20 == 0:  # near midnight of September 30: late rows cross the month
            at = OCT1 - timedelta(minutes=rng.randrange(1, 50))
        org = rng.choice(sorted(ORGS))
        licensee, app = rng.choice(["lic-a", "lic-b"]), rng.choice(["app-1", "app-2", "app-3"])
        call = ApiCall(f"s-{i}", "gw", at, licensee, app, "/x", "GET", 200, rng.randrange(1, 9), 10, org,
                       ORGS[org])  # fmt: skip
        delta = hour_bucket(call)
        if i % 5 == 0:
            delta = dataclasses.replace(delta, occurred_at=delta.period_start + timedelta(minutes=70))
        elif i % 2:
            first = delta.period_start + timedelta(seconds=rng.randrange(1800))
            delta = UsageRecorded(str(uuid.uuid4()), licensee, app, delta.period_start, delta.period_end,
                                  rng.randrange(1, 50), rng.randrange(0, 500), org_id=org, org_type=ORGS[org],
                                  first_event_at=first, last_event_at=first + timedelta(seconds=900),
                                  reference=("tollgate.api-calls.v1", 0, i * 100, i * 100 + 49))  # fmt: skip
        out.append(delta)
    return out


DELTAS = deltas(random.Random(15))  # noqa: S311 - reproducible test data


def truncate(window: str, at: datetime) -> datetime:
    """The start of the UTC window holding `at`."""
    if window == "hour":
        return at.replace(minute=0, second=0, microsecond=0)
    if window == "day":
        return at.replace(hour=0, minute=0, second=0, microsecond=0)
    return Month.of(at).start


def following(window: str, start: datetime) -> datetime:
    return {"hour": start + timedelta(hours=1), "day": start + timedelta(days=1)}.get(window) or \
        Month.of(start).end  # fmt: skip


def expected(
    licensee: str, start: datetime, end: datetime, window: str, group_by: tuple[str, ...]
) -> list[Any]:
    """The answer's rows from the deltas: each counted by its event time, among the buckets that begin
    from the hour of `start` to before `end` (the query's bound on the bucket, as before the rollup)."""
    sums: dict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0, 0])
    for d in DELTAS:
        at = d.occurred_at or d.first_event_at or d.period_start
        bucketed = truncate("hour", start) <= d.period_start < end
        if d.licensee_id == licensee and bucketed and start <= at < end:
            key = (truncate(window, at), *(getattr(d, DIMENSIONS[name]) for name in group_by))
            sums[key][0] += d.calls
            sums[key][1] += d.records
    return [(max(key[0], start), min(following(window, key[0]), end), *key[1:], *sums[key])
            for key in sorted(sums)]  # fmt: skip


@pytest.fixture
def client(ledger_db: LedgerDb) -> TestClient:
    insert_usage(ledger_db, DELTAS)
    tokens = InMemoryTokenStore()
    settings = LedgerSettings("127.0.0.1:9", ledger_db.app_url, Path("/nonexistent"))
    app = create_app(settings, url_connector(ledger_db.app_url), tokens, FixedClock(END + timedelta(days=30)))
    test_client = TestClient(app)
    test_client.headers["Authorization"] = f"Bearer {tokens.create('s-auditor', 'auditor')}"
    return test_client


def answered(client: TestClient, licensee: str, start: datetime, end: datetime, window: str,
             group_by: tuple[str, ...]) -> list[Any]:  # fmt: skip
    query = {"licensee": licensee, "from": start.isoformat(), "to": end.isoformat(), "window": window,
             "group_by": ",".join(group_by), "limit": "10000"}  # fmt: skip
    answer = client.get("/v1/usage", params=query)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["exact"], body["truncated"]) == (True, False)
    names = [DIMENSIONS[name] for name in group_by]
    return [(datetime.fromisoformat(r["window_start"]), datetime.fromisoformat(r["window_end"]),
             *(r[n] for n in names), r["calls"], r["records"]) for r in body["rows"]]  # fmt: skip


def test_the_data_has_keys_whose_calls_lie_in_two_months() -> None:
    late = [d for d in DELTAS if d.period_start < OCT1 <= (d.occurred_at or d.period_start)]
    assert late, "no key crosses the month boundary, so the tests below would not try the row-by-row path"


@pytest.mark.parametrize(
    ("licensee", "start", "end", "window", "group_by"),
    [
        ("lic-a", OCT1 - timedelta(hours=5), OCT1 + timedelta(hours=4), "hour", ("app",)),
        ("lic-b", START, END, "hour", ("app",)),
        ("lic-a", START, END, "day", ("app", "org")),
        ("lic-b", OCT1, END, "day", ("app", "org")),
        ("lic-a", START - timedelta(days=14), OCT1 + timedelta(days=14), "month", ("org_type",)),
        ("lic-b", START, OCT1, "month", ("org", "app")),
    ],
)
def test_grouped_usage_equals_the_sums_of_the_raw_deltas(
    client: TestClient, licensee: str, start: datetime, end: datetime, window: str, group_by: tuple[str, ...]
) -> None:
    want = expected(licensee, start, end, window, group_by)
    assert want
    assert answered(client, licensee, start, end, window, group_by) == want


@pytest.mark.parametrize(
    ("window", "at", "end"),
    [
        ("hour", datetime(2026, 10, 31, 23, 30, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)),
        ("day", datetime(2026, 12, 31, 12, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)),
        ("month", datetime(2028, 2, 29, 23, 59, tzinfo=UTC), datetime(2028, 3, 1, tzinfo=UTC)),
        ("month", datetime(2026, 12, 10, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)),
    ],
)
def test_a_window_ends_where_the_next_utc_window_begins(
    ledger_db: LedgerDb, window: str, at: datetime, end: datetime
) -> None:
    call = ApiCall("w-1", "gw", at, "lic-w", "app-1", "/x", "GET", 200, 3, 10, "c-1", "commercial")
    insert_usage(ledger_db, [hour_bucket(call)])
    query = usage_query.UsageQuery("lic-w", at - timedelta(days=60), at + timedelta(days=60), window, (), 10)
    with psycopg.connect(ledger_db.app_url) as conn:
        (row,) = usage_query.run(conn, query)["rows"]
    assert (row["window_start"], row["window_end"], row["calls"]) == (truncate(window, at), end, 1)
