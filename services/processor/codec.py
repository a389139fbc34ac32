"""Decoding input messages and building dead-letter records."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.core.api_call_check import surely_valid
from services.core.events import ApiCall, dumps, format_time, loads
from services.core.schemas import API_CALL_TYPE, problems

# A dead letter keeps at most this much of the original payload, so one huge message cannot flood the DLQ.
_MAX_PAYLOAD_CHARS = 64 * 1024


@dataclass(frozen=True, slots=True)
class Invalid:
    """Why a message could not be read as an API call."""

    reason: str
    problems: list[dict[str, str]] = field(default_factory=list)


def decode_call(payload: bytes | None) -> ApiCall | Invalid:
    """Parse and validate one input message."""
    if not payload:
        return Invalid("invalid: empty message")
    try:
        document = loads(payload)
    except ValueError as exc:
        return Invalid("invalid: not JSON", [{"field": "(message)", "reason": str(exc)[:200]}])
    # The quick check lets a valid call skip the generic validators; "not sure" runs them all.
    found = [] if surely_valid(document) else problems(API_CALL_TYPE, document)
    if found:
        return Invalid("invalid: schema", found)
    try:
        return ApiCall.from_cloudevent(document)
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        # Schema-valid yet unreadable: in practice a time whose offset takes it out of range in UTC.
        field = "time" if str(exc).startswith("timestamp") else "(event)"
        return Invalid("invalid: unreadable", [{"field": field, "reason": str(exc)[:200]}])


@dataclass(slots=True)  # not frozen: one is built per call, and frozen ones cost more to build
class Source:
    """Where a message came from."""

    topic: str
    partition: int
    offset: int
    key: bytes | None


def dead_letter(
    source: Source,
    reason: str,
    payload: bytes | None,
    detected_at: datetime,
    found: list[dict[str, str]] | None = None,
) -> bytes:
    """The DLQ record: reason, problems, origin and the original payload (as text)."""
    text = (payload or b"").decode("utf-8", errors="replace")
    record: dict[str, Any] = {
        "reason": reason,
        "problems": found or [],
        "topic": source.topic,
        "partition": source.partition,
        "offset": source.offset,
        "key": source.key.decode("utf-8", errors="replace") if source.key else None,
        "payload": text[:_MAX_PAYLOAD_CHARS],
        "payload_truncated": len(text) > _MAX_PAYLOAD_CHARS,
        "detected_at": format_time(detected_at),
    }
    return dumps(record)


@dataclass(frozen=True, slots=True)
class Tick:
    """A ticker's wake-up record (ticker.py): it counts nothing and is not dead-lettered."""


TICKED = Tick()


@dataclass(slots=True)  # not frozen: one is built per call, and frozen ones cost more to build
class Incoming:
    """One input message as the deserializer read it: the raw payload and the call, or why not."""

    payload: bytes
    call: ApiCall | Invalid | Tick


def read_message(payload: bytes | None) -> Incoming:
    """Decode one input message; never raises (a bad message becomes Invalid, then a dead letter)."""
    return Incoming(payload or b"", decode_call(payload))


def check_key(incoming: Incoming, key: bytes | None) -> Incoming:
    """Refuse a call keyed other than by its licensee_id."""
    call = incoming.call
    if isinstance(call, ApiCall) and (key or b"") != call.licensee_id.encode():
        # State lives in the partition of the licensee's key; a call keyed otherwise would split it.
        problems = [{"field": "(key)", "reason": "must equal data.licensee_id"}]
        return Incoming(incoming.payload, Invalid("invalid: key is not the licensee_id", problems))
    return incoming
