"""The rows a month of aggregated billable deltas leaves in `usage_entries`, hash chains included.

The consumer stores `codec.to_row` of each delta and the chain trigger (migrations 0005/0006/0008) links
it. For a bulk load the bench computes the same links here: PostgreSQL's text form of the row (record_out
with timestamps in UTC, ISO) hashed as `services.ledger.chain.link_hash` does. `bench.ledger_month`
proves them by running the ledger's own verify over the loaded month.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from bench.billable_stream import BillableStream, Shape
from services.core.events import UsageRecorded
from services.ledger.chain import GENESIS, link_hash
from services.ledger.codec import USAGE_COLUMNS, to_row

TOPIC = "tollgate.billable.v1"
_SPECIAL = frozenset('"\\(),')


def month_shape(start: datetime, calls: int, days: int) -> Shape:
    """One licensee making `calls` calls over `days` days from `start` (8 apps, 10 orgs, 300 s flushes)."""
    return Shape(licensees=1, largest_per_day=round(calls / days), start=start)


def month_deltas(shape: Shape, days: int, seed: int = 13) -> Iterator[UsageRecorded]:
    """Every delta of `days` days of flushes."""
    yield from BillableStream(shape, seed).flushes(days * 86_400 // shape.flush_seconds)


def _field(value: Any) -> str:
    """One field of PostgreSQL's record text form (record_out), as the chain trigger hashes it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, datetime):
        text = value.strftime("%Y-%m-%d %H:%M:%S")
        if value.microsecond:
            text += f".{value.microsecond:06d}".rstrip("0")
        text += "+00"  # the trigger renders in UTC; every value here is UTC
    else:
        text = str(value)
    if text == "" or any(c in _SPECIAL or c.isspace() for c in text):
        return '"' + text.replace("\\", "\\\\").replace('"', '""') + '"'
    return text


class Chainer:
    """Full `usage_entries` rows in the table's column order, linked per licensee like the trigger."""

    def __init__(self, columns: Sequence[str]) -> None:
        self.columns = tuple(columns)
        self._index = {name: i for i, name in enumerate(self.columns)}
        self._tails: dict[str, tuple[int, str]] = {}

    def row(self, usage: UsageRecorded, partition: int, offset: int) -> tuple[Any, ...]:
        """The stored row of `usage` read at `offset`, recorded when its flush window closed."""
        values: dict[str, Any] = dict(
            zip(USAGE_COLUMNS, to_row(usage, TOPIC, partition, offset), strict=True)
        )
        first = usage.first_event_at or usage.period_start
        values["recorded_at"] = first + timedelta(seconds=301)
        seq, prev = self._tails.get(usage.licensee_id, (0, GENESIS))
        values.update(chain_seq=seq + 1, prev_hash=prev, row_hash=None)
        row = [values.get(name) for name in self.columns]
        content = "(" + ",".join(_field(v) for v in row) + ")"
        row[self._index["row_hash"]] = link = link_hash("usage_entries", content)
        self._tails[usage.licensee_id] = (seq + 1, link)
        return tuple(row)


def relabel(usage: UsageRecorded, licensee_id: str, salt: str) -> UsageRecorded:
    """The same delta for another licensee, with its own usage_id (filler licensees of the month)."""
    import dataclasses
    import uuid

    return dataclasses.replace(
        usage, licensee_id=licensee_id, usage_id=str(uuid.uuid5(uuid.NAMESPACE_OID, salt + usage.usage_id))
    )
