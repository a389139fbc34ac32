"""Pure request checks: media type, body parsing, per-event problems, sources, in-batch duplicates."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, NamedTuple

import orjson

from services.core import ids
from services.core.api_call_check import surely_valid
from services.core.events import format_time, parse_time
from services.core.schemas import API_CALL_TYPE, json_children, problems
from services.core.tokens import Principal
from services.ingest.errors import Refused

SINGLE = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
Kind = Literal["single", "batch"]
BODY = "(body)"
# A valid event nests four levels (event, data, requester, value); anything much deeper is refused before
# the detailed schema check, whose error messages recurse and would overflow on hostile nesting.
MAX_DEPTH = 8
# Defaults of TOLLGATE_INGEST_MAX_EVENT_AGE_SECONDS (a month's replay plus its invoice grace, and a little
# more) and TOLLGATE_INGEST_MAX_FUTURE_SECONDS.
MAX_AGE = timedelta(seconds=3_024_000)
MAX_FUTURE = timedelta(seconds=300)


class Record(NamedTuple):
    """One Kafka record: key = licensee_id, value = the serialized envelope (a tuple: cheap to build)."""

    key: bytes
    value: bytes


@dataclass(frozen=True, slots=True)
class Accepted:
    """Events that passed every check: first occurrences only, plus how many repeats were dropped."""

    events: list[dict[str, Any]]
    duplicates: int
    received: int


def problem(index: int | None, field: str, reason: str) -> dict[str, Any]:
    """One entry of a 4xx `errors` list."""
    return {"index": index, "field": field, "reason": reason}


def media_kind(content_type: str | None) -> Kind:
    """Which CloudEvents mode the Content-Type names (parameters such as charset ignored); else 415."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media == SINGLE:
        return "single"
    if media == BATCH:
        return "batch"
    reason = f"Content-Type must be {SINGLE} (one event) or {BATCH} (a JSON array of events)"
    raise Refused(415, [problem(None, "Content-Type", reason)])


def parse_body(kind: Kind, body: bytes, max_batch: int) -> list[Any]:
    """Decode the body into a list of (unchecked) event documents; 400 when malformed, 413 when too many."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Refused(400, [problem(None, BODY, f"malformed JSON: {str(exc)[:160]}")]) from exc
    if kind == "single":
        if not isinstance(document, dict):
            reason = f"expected one event object; send a JSON array as {BATCH}"
            raise Refused(400, [problem(None, BODY, reason)])
        return [document]
    if not isinstance(document, list):
        raise Refused(400, [problem(None, BODY, "expected a JSON array of events")])
    if len(document) > max_batch:
        reason = f"batch holds {len(document)} events; at most {max_batch} are allowed"
        raise Refused(413, [problem(None, BODY, reason)], events=len(document))
    return document


def nested_deeper_than(document: Any, limit: int) -> bool:
    """Whether JSON `document` nests containers more than `limit` levels (recursion stops at `limit`)."""
    if not isinstance(document, dict | list):
        return False
    if limit <= 0:
        return True
    # Only containers are descended into, so a valid event costs three calls (a plain loop: any() with a
    # generator is twice as slow here, and this runs for every event).
    for child in json_children(document):
        if isinstance(child, dict | list) and nested_deeper_than(child, limit - 1):
            return True
    return False


def nul_fields(document: Any, path: str = "") -> list[str]:
    """Dotted paths of the strings holding U+0000: PostgreSQL text cannot store it, so the ledger would
    dead-letter the usage such an event produces (its source and id travel with it). Refused at the door."""
    if isinstance(document, str):
        return [path or "(event)"] if "\x00" in document else []
    if isinstance(document, dict):
        items: Any = document.items()
    elif isinstance(document, list):
        items = enumerate(document)
    else:
        return []
    return [f for key, value in items for f in nul_fields(value, f"{path}.{key}" if path else str(key))]


def check_nul(body: bytes, documents: Sequence[Any]) -> None:
    """400 naming every string that holds U+0000. JSON can only spell it `\\u0000`, so a body without that
    escape is not walked at all (this runs on every request)."""
    if b"\\u0000" not in body:
        return
    reason = "must not contain NUL (U+0000) characters"
    found = [problem(index, f, reason) for index, doc in enumerate(documents) for f in nul_fields(doc)]
    if found:
        raise Refused(400, found, events=len(documents))


def time_problem(at: datetime, now: datetime, max_future: timedelta, max_age: timedelta) -> str | None:
    """Why an event time is out of bounds, or None: too far ahead would bill a future month, too old (such as
    year 1) is no metering a gateway does and would reach the processor's windows."""
    if at > now + max_future:
        return f"event time is more than {int(max_future.total_seconds())}s ahead of {format_time(now)}"
    if at < now - max_age:
        return f"event time is more than {int(max_age.total_seconds())}s before {format_time(now)}"
    return None


def schema_problems(index: int, document: Any) -> list[dict[str, Any]]:
    """The nesting bound, then every schema violation of one event, each naming its field."""
    if nested_deeper_than(document, MAX_DEPTH):
        return [problem(index, "(event)", f"nested deeper than {MAX_DEPTH} levels")]
    return [problem(index, p["field"], p["reason"]) for p in problems(API_CALL_TYPE, document)]


def event_problems(
    index: int, document: Any, now: datetime, max_future: timedelta, max_age: timedelta = MAX_AGE
) -> list[dict[str, Any]]:
    """Every problem of one event, each naming its field; empty when it is acceptable."""
    # A surely valid event nests three levels and passes every schema check: it skips the generic ones.
    if not surely_valid(document):
        found = schema_problems(index, document)
        if found:
            return found
    try:
        at = parse_time(document["time"])
    except (ValueError, OverflowError) as exc:
        return [problem(index, "time", f"not an RFC 3339 timestamp: {str(exc)[:120]}")]
    reason = time_problem(at, now, max_future, max_age)
    return [problem(index, "time", reason)] if reason else []


def check_events(
    documents: Sequence[Any], now: datetime, max_future: timedelta, max_age: timedelta = MAX_AGE
) -> None:
    """400 listing the problems of every bad event: a batch is all or nothing."""
    found = [
        p for index, doc in enumerate(documents) for p in event_problems(index, doc, now, max_future, max_age)
    ]
    if found:
        raise Refused(400, found, events=len(documents))


def check_sources(principal: Principal, documents: Sequence[dict[str, Any]]) -> None:
    """403 listing every event whose `source` the token may not send."""
    found = [
        problem(index, "source", f"token {principal.token_id!r} may not send events from this source")
        for index, doc in enumerate(documents)
        if not principal.may_send(doc["source"])
    ]
    if found:
        raise Refused(403, found, events=len(documents))


def dedupe(documents: Sequence[dict[str, Any]]) -> Accepted:
    """Keep the first event of each `source` + `id`; count the repeats."""
    seen: set[str] = set()
    kept: list[dict[str, Any]] = []
    for doc in documents:
        key = ids.event_key(doc["source"], doc["id"])
        if key not in seen:
            seen.add(key)
            kept.append(doc)
    return Accepted(kept, len(documents) - len(kept), len(documents))


def accept(
    kind: Kind,
    body: bytes,
    principal: Principal,
    now: datetime,
    max_batch: int,
    max_future: timedelta = MAX_FUTURE,
    max_age: timedelta = MAX_AGE,
) -> Accepted:
    """Every body check in contract order: 400 malformed/invalid, 413 too many, 403 foreign source."""
    documents = parse_body(kind, body, max_batch)
    check_events(documents, now, max_future, max_age)
    check_nul(body, documents)
    check_sources(principal, documents)
    return dedupe(documents)


def to_records(events: Sequence[dict[str, Any]]) -> list[Record]:
    """Kafka records keyed by licensee, so one licensee's calls stay in order on one partition."""
    return [Record(e["data"]["licensee_id"].encode("utf-8"), orjson.dumps(e)) for e in events]
