"""Verifying a usage chain that runs through archived months (pure: no I/O).

A licensee's usage chain runs across months in arrival order, so a detached month (migration 0008) takes
runs of consecutive links out of the middle of it (late usage can interleave months) and maybe its tail.
`ledger_detach_usage_month` records each run: first chain_seq and its prev_hash, last chain_seq and its
row_hash. Verification steps over a run where it begins: its first link must point at the row before it,
and the next stored row must point at the run's last hash. What is in a run is proven by the archived table
itself (its rows link from first to last) and by the audit report's heads printed before the detach.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from services.ledger.domain.chain import Break, Chain, ChainRow, check

TABLE = "usage_entries"


@dataclass(frozen=True, slots=True)
class ArchivedRun:
    """Consecutive links of one licensee's usage chain held by a detached month."""

    licensee_id: str
    first_seq: int
    last_seq: int
    first_prev_hash: str
    last_row_hash: str

    @property
    def rows(self) -> int:
        """How many links the run holds."""
        return self.last_seq - self.first_seq + 1


def _step_over(chain: Chain, runs: deque[ArchivedRun], before: int | None) -> None:
    """Take the archived runs that come before chain_seq `before` (all of them when None) into `chain`."""
    while runs and (before is None or runs[0].first_seq < before):
        run = runs.popleft()
        if chain.first_break is None and (
            run.first_seq != chain.head_seq + 1 or run.first_prev_hash != chain.head_hash
        ):
            reason = "an archived run does not link to the row before it: a row was changed, removed or added"
            key = f"archived links {run.first_seq}-{run.last_seq}"
            chain.first_break = Break(TABLE, chain.licensee_id, key, run.first_seq, reason)
        chain.head_seq, chain.head_hash = run.last_seq, run.last_row_hash


def walk(rows: Iterable[ChainRow], archived: Mapping[str, Sequence[ArchivedRun]]) -> Iterator[Chain]:
    """Each licensee's usage chain of `rows` (in licensee, chain_seq order), stepping over archived runs."""
    seen: set[str] = set()
    chain: Chain | None = None
    runs: deque[ArchivedRun] = deque()
    for row in rows:
        if chain is None or chain.licensee_id != row.licensee_id:
            if chain is not None:
                _step_over(chain, runs, None)
                yield chain
            chain, runs = Chain(TABLE, row.licensee_id), deque(archived.get(row.licensee_id, ()))
            seen.add(row.licensee_id)
        _step_over(chain, runs, row.chain_seq)
        chain.rows += 1
        if chain.first_break is None:
            reason = check(row, chain.head_seq + 1, chain.head_hash)
            if reason is not None:
                chain.first_break = Break(TABLE, row.licensee_id, row.key, row.chain_seq, reason)
        chain.head_seq, chain.head_hash = row.chain_seq or 0, row.row_hash or ""
    if chain is not None:
        _step_over(chain, runs, None)
        yield chain
    for licensee_id in sorted(set(archived) - seen):  # every link of the licensee is archived
        chain = Chain(TABLE, licensee_id)
        _step_over(chain, deque(archived[licensee_id]), None)
        yield chain


def grouped(found: Iterable[tuple[str, int, int, str, str]]) -> dict[str, list[ArchivedRun]]:
    """Archived runs by licensee, from (licensee, first, last, first prev_hash, last row_hash) in order."""
    out: dict[str, list[ArchivedRun]] = {}
    for licensee_id, first, last, prev, head in found:
        out.setdefault(licensee_id, []).append(ArchivedRun(licensee_id, int(first), int(last), prev, head))
    return out
