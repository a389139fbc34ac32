"""Request parameter checks (pure): each failure is a BadParameter naming the field."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from services.core.events import parse_time
from services.core.month import Month
from services.ledger.errors import BadParameter

# ASCII only and \Z, not $: \d takes fullwidth and Arabic-Indic digits, and $ takes a trailing newline.
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,127}\Z")
_DAY = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")
_CURRENCY = re.compile(r"^[A-Z]{3}\Z")
_DIGITS = re.compile(r"[0-9]+")
MAX_LIMIT = 10_000
MAX_AMOUNT = 10**15  # ten trillion units of a two-decimal currency: anything bigger is a typo


@dataclass(frozen=True, slots=True)
class Adjustment:
    """A correction finance posts to the ledger."""

    amount_minor: int
    reason: str
    reference: str
    currency: str | None

    def matches(self, entry: Mapping[str, Any]) -> bool:
        """Whether a stored entry is what this request would post (a retry), not a different adjustment."""
        return (
            entry["amount_minor"] == self.amount_minor
            and entry["reason"] == self.reason
            and entry["reference"] == self.reference
            and self.currency in (None, entry["currency"])
        )


def ascii_int(text: str) -> int | None:
    """`text` as an integer when it is ASCII digits only, else None. str.isdigit() also takes "²" (which
    int() refuses) and fullwidth or Arabic-Indic digits (which int() reads)."""
    return int(text) if _DIGITS.fullmatch(text) else None


def licensee(value: str) -> str:
    """A licensee id, as the message schemas spell it."""
    if not _ID.match(value):
        raise BadParameter(
            "licensee_id",
            "must be 1-128 characters: letters, digits and ._:@/-, not starting with punctuation",
        )
    return value


def month(value: str) -> Month:
    """`YYYY-MM`."""
    try:
        parsed = Month.parse(value)
        _ = parsed.end  # its end must be representable: 9999-12 would be a 500 further on
    except ValueError as exc:
        raise BadParameter("month", "must be YYYY-MM, e.g. 2026-10") from exc
    return parsed


def instant(name: str, value: str) -> datetime:
    """`YYYY-MM-DD` (midnight UTC), `YYYY-MM` (the month's first instant) or RFC 3339 with an offset."""
    text = value.strip()
    try:
        if not text.isascii():
            raise ValueError("not ASCII")
        if _DAY.match(text):
            return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
        if len(text) == 7:
            return Month.parse(text).start
        if len(text) > 64:
            raise ValueError("too long")
        return parse_time(text)
    except (ValueError, OverflowError) as exc:
        raise BadParameter(name, "must be YYYY-MM-DD, YYYY-MM or an RFC 3339 time with offset") from exc


def time_range(query: Mapping[str, str]) -> tuple[datetime | None, datetime | None]:
    """Optional `from` (inclusive) and `to` (exclusive)."""
    start = instant("from", query["from"]) if query.get("from") else None
    end = instant("to", query["to"]) if query.get("to") else None
    if start is not None and end is not None and end <= start:
        raise BadParameter("to", "must be after from")
    return start, end


def required_range(query: Mapping[str, str]) -> tuple[datetime, datetime]:
    """`from` (inclusive) and `to` (exclusive), both required."""
    for name in ("from", "to"):
        if not query.get(name):
            raise BadParameter(name, "is required: YYYY-MM-DD, YYYY-MM or an RFC 3339 time with offset")
    start, end = time_range(query)
    assert start is not None and end is not None  # noqa: S101 - both required above
    return start, end


def limit(query: Mapping[str, str], default: int = 1000) -> int:
    """How many rows at most, 1 to MAX_LIMIT."""
    raw = query.get("limit")
    if raw is None or raw == "":
        return default
    # At most 6 digits are read: a 5,000-digit limit is refused before int() spends time on it.
    value = ascii_int(raw) if len(raw) <= 6 else None
    if value is None or not 1 <= value <= MAX_LIMIT:
        raise BadParameter("limit", f"must be an integer of ASCII digits from 1 to {MAX_LIMIT}")
    return value


def adjustment(body: Any) -> Adjustment:
    """`{amount_minor, reason, reference, currency?}`; amount non-zero, reason and reference required."""
    if not isinstance(body, dict):
        raise BadParameter("body", "must be a JSON object")
    amount = body.get("amount_minor")
    if not isinstance(amount, int) or isinstance(amount, bool) or amount == 0 or abs(amount) > MAX_AMOUNT:
        raise BadParameter("amount_minor", f"must be a non-zero integer of minor units, at most {MAX_AMOUNT}")
    reason, reference, currency = body.get("reason"), body.get("reference"), body.get("currency")
    # PostgreSQL text cannot hold NUL: refused here, it would otherwise be a 500 at the INSERT.
    if not isinstance(reason, str) or not reason.strip() or len(reason) > 500 or "\x00" in reason:
        raise BadParameter("reason", "must be text of 1-500 characters, without NUL")
    if not isinstance(reference, str) or not _printable_ascii(reference.strip(), 200):
        reason = "must name the ledger entry or invoice corrected (1-200 printable ASCII characters)"
        raise BadParameter("reference", reason)
    if currency is not None and (not isinstance(currency, str) or not _CURRENCY.match(currency)):
        raise BadParameter("currency", "must be an ISO 4217 code such as USD")
    unknown = sorted(set(body) - {"amount_minor", "reason", "reference", "currency"})
    if unknown:
        raise BadParameter(unknown[0], "is not a known field")
    return Adjustment(amount, reason.strip(), reference.strip(), currency)


def _printable_ascii(text: str, longest: int) -> bool:
    # Entry and invoice ids are ASCII: a fullwidth one (U+FF11) must not read as entry 1.
    return 1 <= len(text) <= longest and text.isascii() and text.isprintable()


def idempotency_key(value: str | None) -> str | None:
    """An optional `Idempotency-Key` header: retries with the same key post once."""
    if value is None:
        return None
    if not 1 <= len(value) <= 200 or not value.isprintable():
        raise BadParameter("Idempotency-Key", "must be 1-200 printable characters")
    return value


def wants_csv(accept: str) -> bool:
    """Whether the client asked for CSV (`Accept: text/csv`)."""
    return any(part.split(";")[0].strip().lower() == "text/csv" for part in accept.split(","))
