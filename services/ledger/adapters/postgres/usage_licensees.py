"""Who has usage in a month, and since when: from usage_rollup's index, a probe per licensee, not per delta.

These are questions of the bucket start alone, and usage_rollup (migration 0012) holds a key, with its
period_start, for every one usage_entries holds: its statement trigger adds every INSERT or COPY through
usage_entries in the writing transaction (the reader's own uncommitted rows included; committed with the
rows or not at all), and the month detach takes a month's keys out with its partition. Per-call rows,
rows stamped past their hour and late usage have their key like any other. Only the owner can get rows
past it (writing a partition directly, disabling the trigger, attaching a table): `tollgate ledger verify`
names every key that then differs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from services.core.month import Month

if TYPE_CHECKING:
    import psycopg

# Every licensee the rollup holds, in order: each step is one probe of the rollup's unique index (licensee_id
# leads it) for the next licensee, so the walk costs a probe per licensee, not a read of its keys.
_IDS = """WITH RECURSIVE ids (id) AS (
        SELECT min(licensee_id) FROM usage_rollup
        UNION ALL
        SELECT (SELECT min(r.licensee_id) FROM usage_rollup r WHERE r.licensee_id > ids.id)
        FROM ids WHERE ids.id IS NOT NULL)"""
# Of those, the ones with a bucket starting in the month: one more probe each, of the same index (its first
# bucket from the month's start on). A scalar subquery, as an EXISTS became a hash semi-join over a scan of
# the month's rollup rows on a small table, and may on any.
_USED = """SELECT id FROM ids WHERE (SELECT min(r.period_start) FROM usage_rollup r
        WHERE r.licensee_id = ids.id AND r.period_start >= %(start)s) < %(end)s"""
_IN_FORCE = """SELECT licensee_id FROM agreements
        WHERE effective_from < %(end)s AND (effective_to IS NULL OR effective_to > %(start)s)
          AND kind IS DISTINCT FROM 'group'"""  # a group's own record bills nothing
# `tollgate report`'s list: usage in the month or an agreement in force in it.
LICENSEES = f"{_IDS}\n    {_USED}\n    UNION {_IN_FORCE} ORDER BY 1"
# The invoice run's candidates: the same, less those the month's invoice is issued for.
CANDIDATES = f"""{_IDS}
    ({_USED}
     UNION {_IN_FORCE})
    EXCEPT SELECT licensee_id FROM invoices WHERE month = %(month)s ORDER BY 1"""  # noqa: S608
# The earliest bucket start: each licensee's first key (one probe), the least of them.
FIRST_BUCKET = f"""{_IDS}
    SELECT min((SELECT min(r.period_start) FROM usage_rollup r WHERE r.licensee_id = ids.id)) FROM ids"""  # noqa: S608


def month_licensees(conn: psycopg.Connection, month: Month) -> list[str]:
    """Every licensee with usage in the month or an agreement in force in it (a group's record is none)."""
    return [row[0] for row in conn.execute(LICENSEES, {"start": month.start, "end": month.end})]


def uninvoiced(conn: psycopg.Connection, month: Month) -> list[str]:
    """The month's licensees (as `month_licensees`) that have no invoice for it yet."""
    values = {"start": month.start, "end": month.end, "month": month.start.date()}
    return [row[0] for row in conn.execute(CANDIDATES, values)]


def first_usage_month(conn: psycopg.Connection) -> Month | None:
    """The month of the earliest bucket start of any stored usage; None without usage."""
    row = conn.execute(FIRST_BUCKET).fetchone()
    return Month.of(row[0]) if row and row[0] is not None else None
