"""The usage sums behind invoices and reports, read from `usage_rollup` (migration 0012) and exact.

A rollup row holds the sums of one bucket key's deltas and the span [at_min, at_max] of their event times
(`coalesce(occurred_at, first_event_at, period_start)`, the time every read judges a row by). A query takes
a rollup row whole when no bound it applies falls inside that span, so all of the key's rows would land on
the same side of every bound; a key that a bound does cut is read from `usage_entries`, row by row, with the
very predicate the per-row query used. Aggregated deltas lie inside their hour, so on whole-hour bounds
(months, hour/day/month windows, the usual agreement dates) no key is ever cut.
"""

from __future__ import annotations

# The usage_entries rows of the rollup row `r`: LATERAL behind OFFSET 0 (which keeps the planner from
# making it a join over whole partitions), so the rows of a key, an index range of its hour in its month's
# partition, are looked up only for the rollup rows a bound cuts (the branch's WHERE on r goes first).
KEY_ROWS = """CROSS JOIN LATERAL (SELECT * FROM usage_entries e WHERE e.licensee_id = r.licensee_id
        AND e.period_start = r.period_start AND e.period_end = r.period_end AND e.app_id = r.app_id
        AND e.org_id IS NOT DISTINCT FROM r.org_id AND e.org_type IS NOT DISTINCT FROM r.org_type
        AND e.government_notified IS NOT DISTINCT FROM r.government_notified OFFSET 0) AS u"""
# Reads of tens of thousands of rollup rows, for the transaction: LLVM's compilation (on past
# jit_above_cost, which the raw-row branch's estimate passes) took 0.7 s of a 0.9 s invoice on a loaded
# machine, and 4 MB of work_mem sent a month's grouping to disk.
READ_SETTINGS = "SELECT set_config('jit', 'off', true), set_config('work_mem', '32MB', true)"
AT = "coalesce(u.occurred_at, u.first_event_at, u.period_start)"

_IN_MONTH = "r.licensee_id = %(licensee)s AND r.period_start >= %(start)s AND r.period_start < %(end)s"
# A segment bound with some of the key's calls before it and some at or after it.
_CUT = """EXISTS (SELECT 1 FROM s AS b WHERE (b.lo > r.at_min AND b.lo <= r.at_max)
                                      OR (b.hi > r.at_min AND b.hi <= r.at_max))"""
# The invoice: calls and records per agreement segment (idx, 1-based) or outside every segment (NULL).
USAGE_BY_SEGMENT = f"""
    WITH s AS (SELECT * FROM unnest(%(lo)s::timestamptz[], %(hi)s::timestamptz[]) WITH ORDINALITY
               AS s (lo, hi, idx))
    SELECT s.idx, coalesce(sum(p.calls), 0), coalesce(sum(p.records), 0) FROM (
        SELECT r.at_min AS at, r.calls, r.records FROM usage_rollup r WHERE {_IN_MONTH} AND NOT {_CUT}
        UNION ALL
        SELECT {AT}, u.calls, u.records FROM usage_rollup r {KEY_ROWS} WHERE {_IN_MONTH} AND {_CUT}) AS p
    LEFT JOIN s ON p.at >= s.lo AND p.at < s.hi
    GROUP BY s.idx"""  # noqa: S608
# Calls and records per month of bucket start, before a month (late usage of invoiced months).
USAGE_BY_MONTH = """
    SELECT (date_trunc('month', period_start, 'UTC') AT TIME ZONE 'UTC')::date, sum(calls), sum(records)
    FROM usage_rollup WHERE licensee_id = %s AND period_start < %s GROUP BY 1"""
# The usage report: per app and month of bucket start.
APP_MONTHS = """SELECT app_id, (date_trunc('month', period_start, 'UTC') AT TIME ZONE 'UTC')::date,
        sum(calls), sum(records)
    FROM usage_rollup
    WHERE licensee_id = %s AND period_start >= %s::timestamptz AND period_start < %s::timestamptz
    GROUP BY 1, 2"""
# Exact to the call. An aggregated delta holds calls that were all before, or all after, its org's notice:
# `government_notified` says which, and its first/last event times bound its access. A row without the flag
# (a per-call delta, or another producer's) is judged by the org's first notice at its event time (notice
# strictly before it: after); a rollup row decides that whole unless the notice falls inside its span.
GOVERNMENT = f"""
    WITH n AS (SELECT * FROM unnest(%s::text[], %s::timestamptz[]) AS n (org_id, notified_at)),
    r AS MATERIALIZED (SELECT r.*, n.notified_at, r.government_notified IS NULL
                 AND n.notified_at >= r.at_min AND n.notified_at < r.at_max AS cut
          FROM usage_rollup r LEFT JOIN n ON n.org_id = r.org_id
          WHERE r.licensee_id = %s AND r.org_type = 'government'
            AND r.period_start >= %s::timestamptz AND r.period_start < %s::timestamptz),
    parts AS (
        SELECT r.org_id, r.calls, r.records, r.first_at, r.last_at,
               coalesce(r.government_notified, r.notified_at < r.at_min) AS after
        FROM r WHERE NOT coalesce(r.cut, false)
        UNION ALL
        SELECT u.org_id, u.calls, u.records, coalesce(u.first_event_at, u.occurred_at, u.period_start),
               coalesce(u.last_event_at, u.occurred_at, u.period_start), r.notified_at < {AT}
        FROM r {KEY_ROWS} WHERE r.cut)
    SELECT org_id, min(first_at), max(last_at), sum(calls), sum(records),
           coalesce(sum(calls) FILTER (WHERE after), 0), coalesce(sum(records) FILTER (WHERE after), 0)
    FROM parts GROUP BY org_id"""  # noqa: S608
# Tamper evidence for the derived table: the rollup keys whose sums, counts or spans differ from the ones
# recomputed from the hash-chained rows (each differing key once from each side; EXCEPT matches NULLs).
_KEY = "licensee_id, period_start, period_end, app_id, org_id, org_type, government_notified"
ROLLUP_DIFFERENCES = f"""
    WITH truth AS (
        SELECT {_KEY}, sum(calls)::bigint AS calls, sum(records)::bigint AS records, count(*) AS deltas,
               min(coalesce(occurred_at, first_event_at, period_start)) AS at_min,
               max(coalesce(occurred_at, first_event_at, period_start)) AS at_max,
               min(coalesce(first_event_at, occurred_at, period_start)) AS first_at,
               max(coalesce(last_event_at, occurred_at, period_start)) AS last_at
        FROM usage_entries WHERE licensee_id = %(l)s OR %(l)s::text IS NULL GROUP BY {_KEY}),
    held AS (
        SELECT {_KEY}, calls, records, deltas, at_min, at_max, first_at, last_at FROM usage_rollup
        WHERE licensee_id = %(l)s OR %(l)s::text IS NULL)
    SELECT 'rows' AS side, * FROM (SELECT * FROM truth EXCEPT ALL SELECT * FROM held) AS t
    UNION ALL SELECT 'rollup', * FROM (SELECT * FROM held EXCEPT ALL SELECT * FROM truth) AS h
    ORDER BY 2, 3, 5, 6, 1 LIMIT 20"""  # noqa: S608
