"""`GET /v1/usage`: metered calls and records per time window and dimension, like a meter query.

Rows are filtered and windowed by event time: a per-call delta's `occurred_at`; an aggregated delta's first
event (`first_event_at`, else its bucket's start). An aggregated delta lies inside one UTC hour, so hour, day
and month windows, and any `from`/`to` on a UTC hour, are exact to the call. A bound inside an hour is
exact for per-call rows; an aggregated delta whose calls straddle it counts whole on the side of its first
call, and the answer says so (`exact: false`). The ledger checks that an aggregated delta's event times lie
in its bucket, not a per-call row's `occurred_at`: the query reads buckets from the hour of `from` on, so a
per-call row stamped past its bucket's hour counts only in a range that starts by that bucket's hour.
Windows are UTC and clipped to the range asked for. Results
are bounded by `limit` (`truncated` says when more matched) and the range by MAX_RANGE, so one query cannot
scan the whole ledger.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

from services.ledger.adapters.postgres import usage_sums
from services.ledger.domain import params
from services.ledger.errors import BadParameter

PARAMETERS = ("licensee", "from", "to", "window", "group_by", "limit")
WINDOWS = ("hour", "day", "month")
# Query name -> column: a whitelist, so only these identifiers are ever composed into the SQL.
DIMENSIONS = {"app": "app_id", "org": "org_id", "org_type": "org_type"}
MAX_RANGE = timedelta(days=400)
# UTC hours and days as date_bin from a UTC midnight: plain arithmetic on the instant, immutable, so it
# folds on a constant, where date_trunc(..., 'UTC') looks the zone up again for every row (a third of a
# month's read). A month is not a fixed length: it keeps date_trunc.
_BIN = "date_bin(interval {}, {}, timestamptz '0001-01-01 00:00:00+00')"
_WIDTH = {"hour": "'1 hour'", "day": "'24 hours'"}
# The rollup rows that may hold calls in the range (a key wholly before or after it holds none).
_ROLLUP = sql.SQL(
    """{licensee}r.period_start >= date_bin(interval '1 hour', %(start)s::timestamptz,
        timestamptz '0001-01-01 00:00:00+00')
    AND r.period_start < %(end)s AND r.at_max >= %(start)s AND r.at_min < %(end)s"""
)
# One scan of usage_rollup (usage_sums.py) into `g`, not one per part (BENCHMARKS.md, issue 15): a rollup row
# that counts whole (its event-time span inside the range and inside one window) is summed into its group
# there, so only the groups are kept and reach the final sort; any other row is a group of its own, `cut`
# holding it, and its key's rows are read from usage_entries and judged one by one (a scan of the few groups
# when no key is cut). A group is whole when `(g.cut).licensee_id IS NULL` (never NULL in a row): on a row
# value `IS NOT NULL` is true only when every field is non-null, so it would drop a cut key whose org_id or
# government_notified is NULL. Windows are clipped to the range, the sums cast to bigint (not numeric), so the
# rows reach Python as answered.
_STATEMENT = sql.SQL(
    """WITH g AS MATERIALIZED (
        SELECT r.licensee_id, {whole_window} AS window_start{dims},
               CASE WHEN {whole} THEN NULL ELSE r END AS cut, sum(r.calls) AS calls, sum(r.records) AS records
        FROM usage_rollup r WHERE {rollup} GROUP BY r.licensee_id, window_start{dims}, cut)
    SELECT licensee_id, greatest(window_start, %(start)s), least({window_end}, %(end)s){dimensions},
        sum(calls)::bigint, sum(records)::bigint FROM (
        SELECT g.licensee_id, g.window_start{group_dims}, g.calls, g.records FROM g
        WHERE (g.cut).licensee_id IS NULL
        UNION ALL
        SELECT r.licensee_id, {row_window}{dims}, u.calls, u.records
        FROM g CROSS JOIN LATERAL (SELECT (g.cut).*) AS r {key_rows}
        WHERE (g.cut).licensee_id IS NOT NULL AND {at} >= %(start)s AND {at} < %(end)s) AS parts
    GROUP BY {keys} ORDER BY window_start, {keys} LIMIT %(limit)s"""
)
# Aggregated deltas of the licensee (or all) whose calls straddle an instant: it cannot cut them.
STRADDLING = sql.SQL(
    """SELECT EXISTS (SELECT 1 FROM usage_entries WHERE {licensee}
        period_start = date_trunc('hour', %(at)s::timestamptz, 'UTC')
        AND first_event_at < %(at)s AND last_event_at >= %(at)s)"""
)


@dataclass(frozen=True, slots=True)
class UsageQuery:
    """One checked usage query."""

    licensee_id: str | None
    start: datetime
    end: datetime
    window: str | None
    group_by: tuple[str, ...]
    limit: int

    @property
    def columns(self) -> tuple[str, ...]:
        """The CSV columns: who, when, the dimensions grouped by, and the sums."""
        dimensions = tuple(DIMENSIONS[name] for name in self.group_by)
        return ("licensee_id", "window_start", "window_end", *dimensions, "calls", "records")


def parse_query(found: Mapping[str, str]) -> UsageQuery:
    """Check the query parameters; BadParameter names the first bad one."""
    start, end = params.required_range(found)
    if end - start > MAX_RANGE:
        raise BadParameter("to", f"must be at most {MAX_RANGE.days} days after from")
    window = found.get("window") or None
    if window is not None and window not in WINDOWS:
        raise BadParameter("window", f"must be one of {', '.join(WINDOWS)} (or absent for the whole range)")
    return UsageQuery(_licensee(found.get("licensee")), start, end, window, _group_by(found.get("group_by")),
                      params.limit(found))  # fmt: skip


def _licensee(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return params.licensee(value)
    except BadParameter as exc:
        raise BadParameter("licensee", exc.reason) from exc


def _group_by(value: str | None) -> tuple[str, ...]:
    """`app,org,org_type` in any order and subset; each name once."""
    if not value:
        return ()
    names = tuple(part.strip() for part in value.split(","))
    known = ", ".join(DIMENSIONS)
    for name in names:
        if name not in DIMENSIONS:
            raise BadParameter("group_by", f"{name[:40]!r} is not a dimension (known: {known})")
    if len(set(names)) != len(names):
        raise BadParameter("group_by", "must name each dimension once")
    return names


def statement(query: UsageQuery) -> sql.Composed:
    """The SQL of a query (_STATEMENT): grouped sums by window then dimensions, one row past the limit."""
    names = [DIMENSIONS[name] for name in query.group_by]
    keys = sql.SQL(", ").join([sql.Identifier("licensee_id"), sql.SQL("window_start"),
                               *(sql.Identifier(n) for n in names)])  # fmt: skip
    licensee = sql.SQL("r.licensee_id = %(licensee)s AND ") if query.licensee_id else sql.SQL("")
    return _STATEMENT.format(
        whole_window=_window(query.window, sql.SQL("r.at_min")), dims=_columns("r", names),
        whole=_whole(query.window), rollup=_ROLLUP.format(licensee=licensee),
        window_end=_window_end(query.window), dimensions=_columns(None, names),
        group_dims=_columns("g", names), row_window=_window(query.window, sql.SQL(usage_sums.AT)),
        key_rows=sql.SQL(usage_sums.KEY_ROWS), at=sql.SQL(usage_sums.AT), keys=keys,
    )  # fmt: skip


def _window(window: str | None, at: sql.Composable) -> sql.Composable:
    """The start of the UTC window holding `at`."""
    if window is None:
        return sql.SQL("NULL::timestamptz")
    if window == "month":
        return sql.SQL("date_trunc('month', {}, 'UTC')").format(at)
    return sql.SQL(_BIN).format(sql.SQL(_WIDTH[window]), at)


def _window_end(window: str | None) -> sql.Composable:
    """The exclusive end of the UTC window that begins at `window_start` (none without a window)."""
    if window is None:
        return sql.SQL("NULL::timestamptz")
    return _next_window(window, sql.SQL("window_start"))


def _next_window(window: str, start: sql.Composable) -> sql.Composable:
    """The start of the UTC window after the one that begins at `start`."""
    if window == "month":  # on the UTC wall clock: a month of a timestamptz follows the session's zone
        return sql.SQL("(({} AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC'").format(start)
    return sql.SQL("{} + interval {}").format(start, sql.SQL(_WIDTH[window]))


def _whole(window: str | None) -> sql.Composable:
    """Whether a rollup row counts whole: its span inside the range, and inside one window.

    Inside one window as at_max before the next window's start: an inequality, which the planner estimates
    at a third of the rows, where an equality of two windows it took for 0.5% and then sorted every row."""
    inside = sql.SQL("r.at_min >= %(start)s AND r.at_max < %(end)s")
    if window is None:
        return inside
    first = _window(window, sql.SQL("r.at_min"))
    return inside + sql.SQL(" AND r.at_max < {}").format(_next_window(window, first))


def _columns(table: str | None, names: list[str]) -> sql.Composable:
    return sql.SQL("").join(sql.SQL(", ") + sql.Identifier(*([table] if table else []), n) for n in names)


def run(conn: psycopg.Connection, query: UsageQuery) -> dict[str, Any]:
    """The answer document: the query echoed, its rows, and whether the limit cut them."""
    values = {"licensee": query.licensee_id, "start": query.start, "end": query.end, "limit": query.limit + 1}
    conn.execute(usage_sums.READ_SETTINGS)
    found = conn.execute(statement(query), values).fetchall()
    columns = query.columns  # a property: computed once here, not once per row (5,760 rows by hour and app)
    rows = [dict(zip(columns, record, strict=True)) for record in found[: query.limit]]
    return {
        "licensee_id": query.licensee_id, "from": query.start, "to": query.end, "window": query.window,
        "group_by": list(query.group_by), "rows": rows, "truncated": len(found) > query.limit,
        "exact": not any(_straddled(conn, query.licensee_id, at) for at in (query.start, query.end)),
    }  # fmt: skip


def _straddled(conn: psycopg.Connection, licensee_id: str | None, at: datetime) -> bool:
    """Whether an aggregated delta has calls both before and at-or-after `at` (never on a UTC hour)."""
    if at.astimezone(UTC).minute == at.second == at.microsecond == 0:
        return False
    licensee = sql.SQL("licensee_id = %(licensee)s AND") if licensee_id else sql.SQL("")
    row = conn.execute(STRADDLING.format(licensee=licensee), {"licensee": licensee_id, "at": at}).fetchone()
    return bool(row and row[0])
