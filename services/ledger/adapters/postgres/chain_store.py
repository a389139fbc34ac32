"""Reading the hash chains out of PostgreSQL for verification and for the audit report's chain heads."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
from psycopg import sql

from services.core.events import format_time
from services.ledger.adapters.postgres.partitions import ARCHIVED_LINKS
from services.ledger.adapters.postgres.usage_sums import ROLLUP_DIFFERENCES
from services.ledger.domain import chain_runs
from services.ledger.domain.chain import CHAINED_TABLES, Chain, ChainRow, summary, walk

# The table names and key expressions are this package's constants, never input.
_ROWS = """SELECT licensee_id, {key}, chain_seq, prev_hash, row_hash,
        jsonb_populate_record(t, '{{"row_hash": null}}')::text
    FROM {table} AS t WHERE licensee_id = %s OR %s::text IS NULL ORDER BY licensee_id, chain_seq"""
_HEAD = """SELECT chain_seq, row_hash FROM {table}
    WHERE licensee_id = %s ORDER BY chain_seq DESC LIMIT 1"""
# A usage chain's head may be in a detached month (migration 0008). Each side's own ORDER BY ... LIMIT 1
# walks its (licensee, seq) index backwards, one row per partition: over the plain UNION ALL the planner
# sorted every row of the licensee (691,200 of a 65 M-call month: 0.2-0.5 s of the audit report).
_USAGE_HEAD = """SELECT seq, hash FROM (
        (SELECT chain_seq, row_hash FROM usage_entries WHERE licensee_id = %(l)s
         ORDER BY chain_seq DESC LIMIT 1)
        UNION ALL (SELECT last_seq, last_row_hash FROM usage_archived_links WHERE licensee_id = %(l)s
                   ORDER BY last_seq DESC LIMIT 1))
    AS h (seq, hash) ORDER BY seq DESC LIMIT 1"""


def verify(conn: psycopg.Connection, licensee_id: str | None = None) -> dict[str, Any]:
    """Recompute every chain of one licensee (or of all) from one consistent snapshot."""
    conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
    # The trigger hashed each row's text with these settings: timestamps render by them.
    conn.execute("SET LOCAL timezone TO 'UTC'")
    conn.execute("SET LOCAL datestyle TO 'ISO, YMD'")
    # A schema migrated only part of the way (an upgrade test) lacks the later tables: they hold no chain.
    tables = [t for t in CHAINED_TABLES if _exists(conn, t)]
    chains = [chain for table in tables for chain in _walk(conn, table, licensee_id)]
    document = summary(licensee_id, chains)
    if _exists(conn, "usage_rollup"):  # migration 0012
        differs = [_rollup_break(row) for row in conn.execute(ROLLUP_DIFFERENCES, {"l": licensee_id})]
        document["breaks"] += differs
        document["first_break"] = document["first_break"] or (differs[0] if differs else None)
        document["intact"] = document["intact"] and not differs
    return document


def _rollup_break(row: tuple[Any, ...]) -> dict[str, Any]:
    """A rollup key whose figures differ from its rows' (the reports read the rollup)."""
    side, licensee, start, _, app, org, org_type, notified, calls, records, deltas = row[:11]
    key = f"{format_time(start)}|{app}|{org or ''}|{org_type or ''}|{'' if notified is None else notified}"
    reason = f"usage_rollup differs from its rows; {side}: {calls} calls, {records} records, {deltas} deltas"
    return {"table": "usage_rollup", "licensee_id": licensee, "key": key, "chain_seq": None, "reason": reason}


def _walk(conn: psycopg.Connection, table: str, licensee_id: str | None) -> Iterator[Chain]:
    if table != chain_runs.TABLE:
        return walk(_rows(conn, table, licensee_id))
    archived: dict[str, list[chain_runs.ArchivedRun]] = {}
    if _exists(conn, "usage_archived_links"):  # a schema migrated before 0008 has none
        archived = chain_runs.grouped(conn.execute(ARCHIVED_LINKS, (licensee_id, licensee_id)))
    return chain_runs.walk(_rows(conn, table, licensee_id), archived)


def _exists(conn: psycopg.Connection, table: str) -> bool:
    found = conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()
    return bool(found and found[0] is not None)


def _rows(conn: psycopg.Connection, table: str, licensee_id: str | None) -> Iterator[ChainRow]:
    query = sql.SQL(_ROWS).format(key=sql.SQL(CHAINED_TABLES[table]), table=sql.Identifier(table))
    # A server-side cursor streams: a licensee's usage chain may hold millions of rows.
    with conn.cursor(name=f"verify_{table}") as cursor:
        cursor.itersize = 5000
        cursor.execute(query, (licensee_id, licensee_id))
        for lic, key, seq, prev, row_hash, content in cursor:
            yield ChainRow(table, lic, key, seq, prev, row_hash, content)


def heads(conn: psycopg.Connection, licensee_id: str) -> list[dict[str, Any]]:
    """The last link of each of the licensee's chains (seq 0 and no hash for an empty one)."""
    out = []
    for table in CHAINED_TABLES:
        if table == chain_runs.TABLE:
            row = conn.execute(_USAGE_HEAD, {"l": licensee_id}).fetchone()
        else:
            row = conn.execute(sql.SQL(_HEAD).format(table=sql.Identifier(table)), (licensee_id,)).fetchone()
        seq, head = row if row else (0, None)
        out.append({"table": table, "head_seq": int(seq), "head_hash": head})
    return out
