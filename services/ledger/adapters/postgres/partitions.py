"""Month partitions of `usage_entries` (migration 0008): created ahead of the rows, detached once closed.

The consumer asks `MonthPartitions.ensure` for the months of each batch before it opens the batch's
transaction: creating a partition locks usage_entries, and that must not wait for (or hold up) a batch. A
month is asked about once per connection. A row whose month has no partition still lands, in the DEFAULT
partition. `detach` is the owner's step of archiving a closed month (README "Operations").
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime

import psycopg

ENSURE = "SELECT ledger_ensure_usage_partitions(%s::timestamptz[])"
DETACH = "SELECT ledger_detach_usage_month(%s::date, %s::interval)"
ARCHIVED_LINKS = """SELECT licensee_id, first_seq, last_seq, first_prev_hash, last_row_hash
    FROM usage_archived_links WHERE licensee_id = %s OR %s::text IS NULL ORDER BY licensee_id, first_seq"""
PARTITIONS = """SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i
    JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'usage_entries'::regclass ORDER BY 1"""


def month_start(at: datetime) -> datetime:
    """The first instant of the UTC month holding `at`: the partition a row of that period_start is in."""
    return at.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


class MonthPartitions:
    """Remembers the months made sure of on one connection."""

    def __init__(self) -> None:
        self._known: set[datetime] = set()

    def ensure(self, conn: psycopg.Connection, instants: Iterable[datetime]) -> int:
        """Create the partitions of the months of `instants` not made sure of yet; return the new ones."""
        months = {month_start(at) for at in instants} - self._known
        if not months:
            return 0
        try:
            with conn.transaction():
                row = conn.execute(ENSURE, (sorted(months),)).fetchone()
        except psycopg.errors.DuplicateTable:
            # Another ledger instance made the month between the function's check and its CREATE (its
            # re-check under the lock can read a stale catalog); a new transaction sees the month there.
            with conn.transaction():
                row = conn.execute(ENSURE, (sorted(months),)).fetchone()
        self._known |= months
        return int(row[0]) if row else 0

    def forget(self) -> None:
        """After a reconnect: a month archived or created elsewhere meanwhile is asked about again."""
        self._known.clear()


def attached(conn: psycopg.Connection) -> dict[str, str]:
    """The attached partitions of usage_entries and their bounds."""
    return {name: bound for name, bound in conn.execute(PARTITIONS)}


def detach(conn: psycopg.Connection, month: date, closed_for: str = "10 days") -> int:
    """Detach and record a closed month as the owner, in one transaction; return the rows it held."""
    with conn.transaction():
        row = conn.execute(DETACH, (month, closed_for)).fetchone()
    return int(row[0]) if row else 0
