"""The ledger's per-licensee hash chains, recomputed from the rows alone (pure: no I/O).

Migration 0005 links every row of each chained table, per licensee, in a BEFORE INSERT trigger: row n
stores `chain_seq` = n, `prev_hash` (row n-1's `row_hash`, GENESIS for n = 1) and
`row_hash = sha256(table LF content)` in lower-case hex, where content is the row's PostgreSQL text form
(timestamps in UTC, ISO) with row_hash NULL, so prev_hash is in it. Since migration 0006 the content has
its trailing NULL fields folded into one (`fold`), so a nullable column added to a chained table leaves
every stored link valid, and is hashed once a row holds a value in it. Verification needs no trust in the
database's functions: it rehashes that text here and checks every link.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

GENESIS = "0" * 64
# Each chained table and the expression naming one of its rows, as a reader would look it up.
CHAINED_TABLES: dict[str, str] = {
    "agreements": "agreement_version::text",
    "usage_entries": "usage_id",
    "invoices": "invoice_id",
    "invoice_lines": "invoice_id || '#' || line_no",
    "ledger_entries": "entry_id::text",
    "alerts": "alert_id::text",  # migration 0007: its own trigger function, the same link
}


def fold(content: str) -> str:
    """A row's text form with its trailing NULL fields folded into one empty field, as the trigger does."""
    return content[:-1].rstrip(",") + ",)" if content.endswith(",)") else content


def link_hash(table: str, content: str) -> str:
    """The row_hash the trigger stores for a row of `table` whose text form (row_hash NULL) is `content`."""
    return hashlib.sha256(f"{table}\n{fold(content)}".encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ChainRow:
    """One stored row as verification reads it."""

    table: str
    licensee_id: str
    key: str
    chain_seq: int | None
    prev_hash: str | None
    row_hash: str | None
    content: str


@dataclass(frozen=True, slots=True)
class Break:
    """The first row of a chain that does not hold, and why."""

    table: str
    licensee_id: str
    key: str
    chain_seq: int | None
    reason: str


@dataclass(slots=True)
class Chain:
    """What verification found for one (table, licensee) chain."""

    table: str
    licensee_id: str
    rows: int = 0
    head_seq: int = 0
    head_hash: str = GENESIS
    first_break: Break | None = None


def check(row: ChainRow, expected_seq: int, expected_prev: str) -> str | None:
    """Why `row` breaks the chain at this point, or None when it links."""
    if row.chain_seq != expected_seq:
        return f"chain_seq is {row.chain_seq} where {expected_seq} was expected: a row is missing or added"
    if row.prev_hash != expected_prev:
        return "prev_hash is not the row_hash of the row before it: a row before it was changed or removed"
    if row.row_hash != link_hash(row.table, row.content):
        return "its content does not hash to its row_hash: the row was edited"
    return None


def walk(rows: Iterable[ChainRow]) -> Iterator[Chain]:
    """Each chain of `rows` (grouped by table and licensee, in chain_seq order), verified link by link."""
    chain: Chain | None = None
    for row in rows:
        if chain is None or (chain.table, chain.licensee_id) != (row.table, row.licensee_id):
            if chain is not None:
                yield chain
            chain = Chain(row.table, row.licensee_id)
        chain.rows += 1
        if chain.first_break is None:
            reason = check(row, chain.head_seq + 1, chain.head_hash)
            if reason is not None:
                chain.first_break = Break(row.table, row.licensee_id, row.key, row.chain_seq, reason)
        # The head is what is stored: an auditor compares it with the one printed in an earlier report.
        chain.head_seq, chain.head_hash = row.chain_seq or 0, row.row_hash or ""
    if chain is not None:
        yield chain


def summary(licensee_id: str | None, chains: Iterable[Chain]) -> dict[str, Any]:
    """The verify answer: intact or not, each chain's head, and the first break of each broken chain."""
    found = list(chains)
    breaks = [c.first_break for c in found if c.first_break is not None]
    return {
        "licensee_id": licensee_id,
        "intact": not breaks,
        "rows_checked": sum(c.rows for c in found),
        "first_break": _break(breaks[0]) if breaks else None,
        "breaks": [_break(b) for b in breaks],
        "chains": [{"table": c.table, "licensee_id": c.licensee_id, "rows": c.rows,
                    "head_seq": c.head_seq, "head_hash": c.head_hash} for c in found],
    }  # fmt: skip


def _break(found: Break) -> dict[str, Any]:
    return {"table": found.table, "licensee_id": found.licensee_id, "key": found.key,
            "chain_seq": found.chain_seq, "reason": found.reason}  # fmt: skip
