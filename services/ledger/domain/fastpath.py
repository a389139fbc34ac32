"""A fast, conservative shape check for billable envelopes as the processor writes them (pure: no I/O).

`FastRows.row` returns the `usage_entries` row of an envelope only when it is certain the full path
(`codec.decode` then `codec.to_row`) would return exactly that row; anything unusual returns None and the
caller takes the full path, which gives the verdict and the reason. So this module may only ever be
stricter than the schema, never looser; `tests/unit/ledger/test_ledger_fastpath.py` proves the agreement
on generated valid and invalid envelopes.

Leaf strings with a pattern or format are checked by fastjsonschema validators compiled from the schema's
own subschemas (so their semantics are the schema's by construction) and memoized, because licensee, app,
org and hour-bucket values repeat across nearly every message. Aggregated deltas (`first_event_at`,
`last_event_at`, `government_notified`, `reference`) take the fast path too, with codec's checks beyond the
schema (event times inside the bucket, first not after last, the flag only for a government org, offsets in
order and within PostgreSQL's integer columns).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import fastjsonschema
import orjson

from services.core.events import parse_time
from services.core.schemas import BILLABLE_TYPE, load_schema

MAX_BUCKET = timedelta(hours=1)
MAX_COUNT = 2**40  # the same bound as codec.MAX_COUNT; larger values take the full path and are refused
MAX_PARTITION = 2**31 - 1  # codec.MAX_PARTITION
MAX_OFFSET = 2**63 - 1  # codec.MAX_OFFSET
MEMO_MAX = 65_536  # distinct values remembered per field before the memo starts over
_ENVELOPE_KEYS = frozenset(
    {"specversion", "id", "source", "type", "time", "datacontenttype", "dataschema", "subject", "data"}
)
_DATA_REQUIRED = frozenset(
    {"usage_id", "licensee_id", "app_id", "period_start", "period_end", "calls", "records"}
)
_DATA_KEYS = _DATA_REQUIRED | {"occurred_at", "requester", "source_event"} | {
    "first_event_at", "last_event_at", "government_notified", "reference"}  # fmt: skip
_PAIR_KEYS = {"requester": frozenset({"org_id", "org_type"}), "source_event": frozenset({"source", "id"})}
_REFERENCE_ORDER = ("topic", "partition", "first_offset", "last_offset")  # codec.USAGE_COLUMNS' source_*
_REFERENCE_KEYS = frozenset(_REFERENCE_ORDER)
_NO_SPAN = (None, None)
_NO_REFERENCE = (None, None, None, None)
# JSON Schema's `format: uuid`, anchored at both ends (fullmatch), exactly as fastjsonschema checks it.
_ABSENT = object()  # a key left out, unlike one present with JSON null (which the schema refuses)
_UUID = re.compile(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}")


def _subvalidator(*path: str) -> tuple[Callable[[Any], Any], str]:
    """A fastjsonschema validator of the billable schema's subschema at `path`, and that subschema's JSON."""
    schema = load_schema(BILLABLE_TYPE)
    node: dict[str, Any] = schema
    for key in path:
        node = node["properties"][key]
    subschema = {"$schema": schema["$schema"], **node}
    compiled: Callable[[Any], Any] = fastjsonschema.compile(subschema)
    return compiled, json.dumps(subschema, sort_keys=True)


class _Memo:
    """Remembers what a check said about each string (a bounded dict; cleared when full)."""

    def __init__(self, check: Callable[[str], Any]) -> None:
        self._check = check
        self._seen: dict[str, Any] = {}

    def __call__(self, value: Any) -> Any:
        """The check's answer for `value`; None when it is not a string or the check refused it."""
        if type(value) is not str:
            return None
        if len(value) > 256:  # longer than any memoized field allows: refused, and not worth remembering
            return self._check(value)
        found = self._seen.get(value, self)
        if found is self:
            if len(self._seen) >= MEMO_MAX:
                self._seen.clear()
            found = self._seen[value] = self._check(value)
        return found


def _valid(validate: Callable[[Any], Any]) -> Callable[[str], Any]:
    def check(value: str) -> Any:
        try:
            validate(value)
        except fastjsonschema.JsonSchemaException:
            return None
        return value

    return check


def _instant(validate: Callable[[Any], Any]) -> Callable[[str], datetime | None]:
    def check(value: str) -> datetime | None:
        try:
            validate(value)
            return parse_time(value)
        except (fastjsonschema.JsonSchemaException, ValueError, OverflowError):
            return None

    return check


def _bucket(start: datetime, end: datetime) -> bool:
    """A bucket of one hour or less, as codec checks it (near datetime's limits: the full path decides)."""
    try:
        return start < end <= start + MAX_BUCKET
    except OverflowError:
        return False


def _text(value: Any, most: int, least: int = 0) -> bool:
    return type(value) is str and least <= len(value) <= most


def _count(value: Any, most: int = MAX_COUNT) -> bool:
    # bool and float are legal JSON Schema integers only in odd ways; the full path decides those.
    return type(value) is int and 0 <= value <= most


def _reference(value: Any) -> tuple[Any, ...] | None:
    """The reference's columns when certainly valid: topic, partition, first and last offset in order."""
    if value is _ABSENT:
        return _NO_REFERENCE
    if type(value) is not dict or value.keys() != _REFERENCE_KEYS:
        return None
    found = (topic, partition, first, last) = tuple(value[key] for key in _REFERENCE_ORDER)
    if not (
        _text(topic, 249, 1) and _count(partition, MAX_PARTITION) and _count(first, MAX_OFFSET)
        and _count(last, MAX_OFFSET) and first <= last
    ):  # fmt: skip
        return None
    return found


_NO_AGGREGATE = (*_NO_SPAN, None, *_NO_REFERENCE)


class FastRows:
    """Rows straight from envelope dicts, for the common, certainly valid case; None means 'ask codec'."""

    def __init__(self) -> None:
        memos: dict[str, _Memo] = {}  # one memo per distinct subschema: `time` usually equals `occurred_at`

        def memo(kind: Callable[[Callable[[Any], Any]], Callable[[str], Any]], *path: str) -> _Memo:
            validate, key = _subvalidator(*path)
            return memos.setdefault(f"{kind.__name__} {key}", _Memo(kind(validate)))

        self._time = memo(_instant, "time")
        self._start = memo(_instant, "data", "period_start")
        self._end = memo(_instant, "data", "period_end")
        self._occurred = memo(_instant, "data", "occurred_at")
        self._first = memo(_instant, "data", "first_event_at")
        self._last = memo(_instant, "data", "last_event_at")
        self._licensee = memo(_valid, "data", "licensee_id")
        self._app = memo(_valid, "data", "app_id")
        self._org = memo(_valid, "data", "requester", "org_id")
        self._org_type = memo(_valid, "data", "requester", "org_type")

    def row(self, value: bytes | None, topic: str, partition: int, offset: int) -> tuple[Any, ...] | None:
        """The row `codec.to_row(codec.decode(value), ...)` would give, or None when not certain."""
        # An escaped NUL may sit in any string; the full path finds where and refuses it.
        if value is None or b"\\u0000" in value:
            return None
        try:
            data = self._data(orjson.loads(value))
        except orjson.JSONDecodeError:
            return None
        if data is None:
            return None
        usage_id, calls, records = data["usage_id"], data["calls"], data["records"]
        start, end = self._start(data["period_start"]), self._end(data["period_end"])
        if not (
            type(usage_id) is str and _UUID.fullmatch(usage_id) and _count(calls) and _count(records)
            and start is not None and end is not None and _bucket(start, end)
        ):  # fmt: skip
            return None
        occurred = self._occurred(data["occurred_at"]) if "occurred_at" in data else None
        org = self._requester(data.get("requester", _ABSENT))
        event = self._source_event(data.get("source_event", _ABSENT))
        licensee, app = self._licensee(data["licensee_id"]), self._app(data["app_id"])
        if org is None or event is None or licensee is None or app is None:
            return None
        if occurred is None and "occurred_at" in data:
            return None
        aggregate = self._aggregate(data, start, end, org[1]) if len(data) > 7 else _NO_AGGREGATE
        if aggregate is None:
            return None
        # str(uuid.UUID(x)) of a string matching the uuid format is exactly its lower case.
        return (usage_id.lower(), licensee, app, start, end, occurred, calls, records, *org, *event,
                topic, partition, offset, *aggregate)  # fmt: skip

    def _aggregate(self, data: dict[str, Any], start: datetime, end: datetime, org_type: Any) -> Any:
        """An aggregated delta's columns (all None when it has none), or None when not certainly valid."""
        span = self._span(data.get("first_event_at", _ABSENT), data.get("last_event_at", _ABSENT), start, end)
        notified = data.get("government_notified", _ABSENT)
        if notified is _ABSENT:
            notified = None
        elif type(notified) is not bool or org_type != "government":
            return None
        reference = _reference(data.get("reference", _ABSENT))
        if span is None or reference is None:
            return None
        return (*span, notified, *reference)

    def _span(self, first: Any, last: Any, start: datetime, end: datetime) -> tuple[Any, Any] | None:
        """First and last event time, each absent or inside `[start, end)`, the first not after the last."""
        if first is _ABSENT and last is _ABSENT:
            return _NO_SPAN
        at = None if first is _ABSENT else self._first(first)
        to = None if last is _ABSENT else self._last(last)
        if (at is None and first is not _ABSENT) or (to is None and last is not _ABSENT):
            return None
        if not all(start <= t < end for t in (at, to) if t is not None):
            return None
        return None if at is not None and to is not None and at > to else (at, to)

    def _data(self, envelope: Any) -> dict[str, Any] | None:
        """The envelope's `data` when every envelope attribute is certainly valid."""
        if type(envelope) is not dict or not envelope.keys() <= _ENVELOPE_KEYS:
            return None
        if not (
            envelope.get("specversion") == "1.0" and envelope.get("type") == BILLABLE_TYPE
            and _text(envelope.get("id"), 256, 1) and _text(envelope.get("source"), 512, 1)
            and self._time(envelope.get("time")) is not None
            and envelope.get("datacontenttype", "application/json") == "application/json"
            and _text(envelope.get("dataschema", ""), 512) and _text(envelope.get("subject", ""), 256)
        ):  # fmt: skip
            return None
        data = envelope.get("data")
        if type(data) is not dict or not (_DATA_REQUIRED <= data.keys() <= _DATA_KEYS):
            return None
        return data

    def _requester(self, value: Any) -> tuple[Any, Any] | None:
        if value is _ABSENT:
            return (None, None)
        if type(value) is not dict or value.keys() != _PAIR_KEYS["requester"]:
            return None
        org, kind = self._org(value["org_id"]), self._org_type(value["org_type"])
        return None if org is None or kind is None else (org, kind)

    def _source_event(self, value: Any) -> tuple[Any, Any] | None:
        if value is _ABSENT:
            return (None, None)
        if type(value) is not dict or value.keys() != _PAIR_KEYS["source_event"]:
            return None
        source, event_id = value["source"], value["id"]
        return (source, event_id) if _text(source, 512) and _text(event_id, 256) else None
