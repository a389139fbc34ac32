"""A month of aggregated billable deltas generated set-wise in PostgreSQL, linked by the real chain trigger.

The shape is the processor's (services/processor/domain/usage.py): every FLUSH_SECONDS each open bucket
(licensee, UTC hour, app, requester org with its type, notice) leaves as one delta holding its calls and
records, its first and last event time inside the flush window, and the input offsets its calls took on the
licensee's partition. Apps and orgs are Zipf-weighted as in bench/billable_stream.py, the last org is a
government one, and traffic follows a day curve (half as much at night as at noon). Each bucket's calls
over the month are apportioned exactly: `calls` of flush k is floor(T * F(k + 1)) - floor(T * F(k)) for
the bucket's month total T and the month's cumulative curve F, so the month holds exactly the calls asked
for and `expected` says how many of each (app, org) there are without reading the ledger.

`INSERT ... SELECT generate_series(...)` into `usage_entries` as the owner: every row goes through the
table's own BEFORE INSERT trigger (migrations 0005/0006/0008), which links the licensee's hash chain
exactly as it does for the consumer's rows; nothing here computes a hash.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg import sql

FLUSH_SECONDS = 300
PER_DAY = 86_400 // FLUSH_SECONDS
APPS, ORGS = 8, 10
DAY_SWING = 1 / 3  # the day curve: rate (1 - s cos(2 pi t / day)), so the peak is twice the trough

# One row per (flush, app, org) of a licensee, in chain order (flush, app, org): the month's deltas.
_DELTAS = """
WITH combo AS (
    SELECT app, org, total, records_per_call
    FROM unnest(%(apps)s::int[], %(orgs)s::int[], %(totals)s::bigint[], %(per_call)s::int[])
         AS c (app, org, total, records_per_call)),
flush AS (
    SELECT k, %(start)s::timestamptz + k * make_interval(secs => %(flush)s) AS at,
           CASE WHEN k = 0 THEN 0::float8
                ELSE k::float8 / %(flushes)s - %(swing)s / (2 * pi() * %(days)s)
                     * sin(2 * pi() * k / %(per_day)s) END AS lo,
           CASE WHEN k + 1 = %(flushes)s THEN 1::float8
                ELSE (k + 1)::float8 / %(flushes)s - %(swing)s / (2 * pi() * %(days)s)
                     * sin(2 * pi() * (k + 1) / %(per_day)s) END AS hi
    FROM generate_series(0, %(flushes)s - 1) AS k),
delta AS (
    SELECT f.k, f.at, c.app, c.org, c.records_per_call,
           (floor(c.total * f.hi) - floor(c.total * f.lo))::bigint AS calls
    FROM flush f CROSS JOIN combo c),
placed AS (
    SELECT d.*, sum(d.calls) OVER (ORDER BY d.k, d.app, d.org) - d.calls AS first_offset,
           row_number() OVER (ORDER BY d.k, d.app, d.org) AS n
    FROM delta d WHERE d.calls > 0)
INSERT INTO {table} (usage_id, licensee_id, app_id, period_start, period_end, calls, records, org_id,
    org_type, kafka_topic, kafka_partition, kafka_offset, recorded_at, first_event_at, last_event_at,
    government_notified, source_topic, source_partition, source_first_offset, source_last_offset)
SELECT md5(%(licensee)s || '|' || p.k || '|' || p.app || '|' || p.org)::uuid::text, %(licensee)s,
       'app-' || p.app, date_trunc('hour', p.at, 'UTC'), date_trunc('hour', p.at, 'UTC') + interval '1 hour',
       p.calls, p.calls * p.records_per_call, %(org_prefix)s || '-org-' || p.org,
       CASE WHEN p.org = %(government)s THEN 'government' ELSE 'commercial' END,
       'tollgate.billable.v1', %(partition)s, p.n - 1, p.at + make_interval(secs => %(flush)s + 1),
       p.at, p.at + make_interval(secs => %(flush)s * (p.calls - 1)::float8 / p.calls),
       CASE WHEN p.org = %(government)s THEN %(notified)s END,
       'tollgate.api-calls.v1', %(partition)s, p.first_offset, p.first_offset + p.calls - 1
FROM placed p ORDER BY p.k, p.app, p.org"""


def zipf(count: int) -> list[float]:
    """Zipf (s = 1) weights of `count` ranks, summing to 1."""
    weights = [1 / rank for rank in range(1, count + 1)]
    return [w / sum(weights) for w in weights]


def apportion(total: int, weights: list[float]) -> list[int]:
    """`total` split by `weights` into integers that sum to it exactly (largest remainders)."""
    shares = [total * w for w in weights]
    floors = [math.floor(s) for s in shares]
    order = sorted(range(len(shares)), key=lambda i: floors[i] - shares[i])
    for i in order[: total - sum(floors)]:
        floors[i] += 1
    return floors


@dataclass(frozen=True, slots=True)
class Licensee:
    """One licensee's month: its calls, over how many flush windows from `start`, its Kafka partition."""

    licensee_id: str
    calls: int
    start: datetime
    flushes: int
    partition: int = 0
    notified: bool = True  # its government org's notice came before the month
    orgs: str = ""  # its requester orgs' prefix: another licensee's serves the same orgs (default its own id)

    def combos(self) -> list[tuple[int, int, int, int]]:
        """(app, org, month calls, records per call) of every bucket key; calls sum to `calls` exactly."""
        weights = [wa * wo for wa in zipf(APPS) for wo in zipf(ORGS)]
        totals = apportion(self.calls, weights)
        return [(i // ORGS, i % ORGS, totals[i], 5 + 5 * (i // ORGS)) for i in range(APPS * ORGS)]

    def expected(self) -> dict[str, int]:
        """What the month must sum to: calls, records, and the government org's calls and records."""
        combos = self.combos()
        government = [c for c in combos if c[1] == ORGS - 1]
        return {
            "calls": sum(c[2] for c in combos), "records": sum(c[2] * c[3] for c in combos),
            "government_calls": sum(c[2] for c in government),
            "government_records": sum(c[2] * c[3] for c in government),
        }  # fmt: skip

    def rows(self) -> int:
        """How many deltas the month holds (every bucket has calls in every flush at these volumes)."""
        return self.flushes * APPS * ORGS


def fill(conn: psycopg.Connection, licensee: Licensee, table: str = "usage_entries") -> int:
    """INSERT the licensee's month into `table` (usage_entries: its trigger links it); commit; rows stored."""
    combos = licensee.combos()
    per_day = PER_DAY
    statement = sql.SQL(_DELTAS).format(table=sql.Identifier(table))  # type: ignore[arg-type]
    cursor = conn.execute(statement, {
        "apps": [c[0] for c in combos], "orgs": [c[1] for c in combos], "totals": [c[2] for c in combos],
        "per_call": [c[3] for c in combos], "start": licensee.start, "flush": FLUSH_SECONDS,
        "flushes": licensee.flushes, "per_day": per_day, "days": licensee.flushes / per_day,
        "swing": DAY_SWING,
        "licensee": licensee.licensee_id, "org_prefix": licensee.orgs or licensee.licensee_id,
        "government": ORGS - 1, "partition": licensee.partition,
        "notified": licensee.notified,
    })  # fmt: skip
    conn.commit()
    return cursor.rowcount
