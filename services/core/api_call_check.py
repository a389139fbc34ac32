"""A quick yes-or-no check of `io.tollgate.api.call.v1` envelopes, for the common case: a valid event.

`surely_valid(document)` is True only when the api-call schema, with Tollgate's strict integers, accepts
`document` (what `schemas.problems` would answer with an empty list). False means "not sure": the caller
then runs the full validators, which name every bad field. So this check refuses nothing by itself and
adds no rule; it only lets a valid event skip the generic validators. It is stricter than the schema where
that is cheaper (exact `str`/`int`/`dict` types), and every bound, enum and pattern is read from the
schema file. `tests/unit/core/test_api_call_check.py` proves it never says yes where the validators say no,
and fails when the schema gains a keyword this module does not know.
"""

from __future__ import annotations

import re
from typing import Any, Final

from fastjsonschema.draft04 import CodeGeneratorDraft04

from services.core.schemas import API_CALL_TYPE, load_schema

_SCHEMA: Final = load_schema(API_CALL_TYPE)
_ENVELOPE: Final = _SCHEMA["properties"]
_DATA: Final = _ENVELOPE["data"]["properties"]
_REQUESTER: Final = _DATA["requester"]["properties"]


def _exact(pattern: str) -> re.Pattern[str]:
    """A schema pattern anchored as fastjsonschema anchors it: `$` is the very end, never before a newline."""
    if not (pattern.startswith("^") and pattern.endswith("$")):
        raise ValueError(f"api-call patterns are anchored at both ends: {pattern!r}")
    return re.compile(pattern[1:-1])


def _bounds(field: dict[str, Any]) -> tuple[int, int]:
    return int(field["minimum"]), int(field["maximum"])


# The `^[^\u0000]*$` pattern of the free-text fields: no NUL, which `in` finds faster than a regex.
_NO_NUL: Final = "^[^\\u0000]*$"
_REQUIRED: Final = frozenset(_SCHEMA["required"])
_KNOWN: Final = frozenset(_ENVELOPE)
_DATA_KEYS: Final = frozenset(_DATA)
_REQUESTER_KEYS: Final = frozenset(_REQUESTER)
_SPECVERSION: Final = _ENVELOPE["specversion"]["const"]
_TYPE: Final = _ENVELOPE["type"]["const"]
_CONTENT_TYPE: Final = _ENVELOPE["datacontenttype"]["const"]
_ID_MAX: Final = _ENVELOPE["id"]["maxLength"]
_SOURCE_MAX: Final = _ENVELOPE["source"]["maxLength"]
_TIME_MAX: Final = _ENVELOPE["time"]["maxLength"]
_TIME: Final = _exact(_ENVELOPE["time"]["pattern"])
# fastjsonschema's own `date-time` format (calendar days, leap years, offsets up to 23:59), cut in two at
# its `(t|T)`: the ten characters of the date, whose answer is remembered (a batch shares a few dates), and
# the rest. The two halves match exactly what the whole does: every date alternative is ten characters.
_DATE_PART, _T, _CLOCK_PART = CodeGeneratorDraft04.FORMAT_REGEXS["date-time"].partition("(t|T)")
_DATE: Final = re.compile(_DATE_PART + r"\Z")
_CLOCK: Final = re.compile(_T + _CLOCK_PART)
# Strings already seen to match an identifier pattern, per pattern; emptied when this many are held.
_MEMO_LIMIT: Final = 65_536
_matched: dict[re.Pattern[str], set[str]] = {}
_OPTIONAL_TEXT: Final = {name: _ENVELOPE[name]["maxLength"] for name in ("dataschema", "subject")}
_NAME: Final = _exact(_SCHEMA["propertyNames"]["pattern"])
_EXTRA_MAX: Final = _SCHEMA["additionalProperties"]["maxLength"]
_DATA_ID: Final = _exact(_DATA["licensee_id"]["pattern"])
_APP_ID: Final = _exact(_DATA["app_id"]["pattern"])
_ORG_ID: Final = _exact(_REQUESTER["org_id"]["pattern"])
_ENDPOINT_MAX: Final = _DATA["endpoint"]["maxLength"]
_METHODS: Final = frozenset(_DATA["method"]["enum"])
_ORG_TYPES: Final = frozenset(_REQUESTER["org_type"]["enum"])
_STATUS: Final = _bounds(_DATA["status"])
_RECORDS: Final = _bounds(_DATA["records"])
_BYTES: Final = _bounds(_DATA["bytes"])


def _assumptions() -> list[str]:
    """What this module takes for granted about the schema; each broken one is named at import."""
    broken = []
    texts = [_ENVELOPE[f] for f in ("id", "source", "dataschema", "subject")] + [_DATA["endpoint"]]
    if any(field["pattern"] != _NO_NUL for field in texts):
        broken.append("the free-text fields forbid only NUL")
    if (
        set(_ENVELOPE["data"]["required"]) != _DATA_KEYS
        or set(_DATA["requester"]["required"]) != _REQUESTER_KEYS
    ):
        broken.append("every member of data and of data.requester is required")
    if any(_NAME.fullmatch(name) is None for name in _KNOWN):
        broken.append("every named envelope attribute matches propertyNames")
    if not (_T and _DATE_PART.startswith("^") and _CLOCK_PART.endswith("\\Z")):
        broken.append("fastjsonschema's date-time pattern has one (t|T) between date and clock")
    if _SCHEMA["additionalProperties"]["type"] != ["string", "integer", "boolean"]:
        broken.append("extensions are strings, integers or booleans")
    return broken


if _assumptions():
    raise RuntimeError(
        f"api_call_check.py no longer matches the api-call schema: {_assumptions()}"
    )


def _text(value: Any, minimum: int, maximum: int) -> bool:
    """A `str` of `minimum`..`maximum` characters without NUL."""
    return type(value) is str and minimum <= len(value) <= maximum and "\x00" not in value


def _integer(value: Any, bounds: tuple[int, int]) -> bool:
    """A JSON integer (never a float, never a bool) within the schema's bounds."""
    return type(value) is int and bounds[0] <= value <= bounds[1]


def _matches(value: str, pattern: re.Pattern[str]) -> bool:
    """`pattern.fullmatch(value)`, remembered for the values that match (ids repeat across a batch)."""
    seen = _matched.setdefault(pattern, set())
    if value in seen:
        return True
    if pattern.fullmatch(value) is None:
        return False
    if len(seen) >= _MEMO_LIMIT:
        seen.clear()
    seen.add(value)
    return True


def _identifier(value: Any, pattern: re.Pattern[str]) -> bool:
    return type(value) is str and _matches(value, pattern)


def _time(value: Any) -> bool:
    return (
        type(value) is str
        and len(value) <= _TIME_MAX
        and _TIME.fullmatch(value) is not None
        and _matches(value[:10], _DATE)
        and _CLOCK.match(value, 10) is not None
    )


def _envelope_rest(document: dict[str, Any]) -> bool:
    """The optional attributes and the extensions: names, types and lengths."""
    for name, value in document.items():
        if name in _REQUIRED:
            continue
        if name == "datacontenttype":
            if not (type(value) is str and value == _CONTENT_TYPE):
                return False
        elif name in _OPTIONAL_TEXT:
            if not _text(value, 0, _OPTIONAL_TEXT[name]):
                return False
        elif type(name) is not str or _NAME.fullmatch(name) is None:
            return False
        elif type(value) is str:
            if len(value) > _EXTRA_MAX:
                return False
        elif type(value) not in (int, bool):
            return False
    return True


def _data(data: Any) -> bool:
    """The `data` object: exactly its eight members, each of the right kind, and the requester's two."""
    if type(data) is not dict or data.keys() != _DATA_KEYS:
        return False
    requester = data["requester"]
    return (
        _identifier(data["licensee_id"], _DATA_ID)
        and _identifier(data["app_id"], _APP_ID)
        and _text(data["endpoint"], 1, _ENDPOINT_MAX)
        and type(data["method"]) is str
        and data["method"] in _METHODS
        and _integer(data["status"], _STATUS)
        and _integer(data["records"], _RECORDS)
        and _integer(data["bytes"], _BYTES)
        and type(requester) is dict
        and requester.keys() == _REQUESTER_KEYS
        and _identifier(requester["org_id"], _ORG_ID)
        and type(requester["org_type"]) is str
        and requester["org_type"] in _ORG_TYPES
    )


def surely_valid(document: Any) -> bool:
    """True only when the api-call schema (strict integers) accepts `document`; False: run the validators."""
    if type(document) is not dict or not document.keys() >= _REQUIRED:
        return False
    specversion, kind = document["specversion"], document["type"]
    return (
        type(specversion) is str
        and specversion == _SPECVERSION
        and type(kind) is str
        and kind == _TYPE
        and _text(document["id"], 1, _ID_MAX)
        and _text(document["source"], 1, _SOURCE_MAX)
        and _time(document["time"])
        and _data(document["data"])
        and (len(document) == len(_REQUIRED) or _envelope_rest(document))
    )


# (path, keyword) of every schema keyword this check implements; the unit test compares it with the schema.
KNOWN_KEYWORDS: Final = frozenset(
    {("", k) for k in ("$schema", "$id", "title", "description", "type", "required", "properties")}
    | {("", "propertyNames"), ("", "additionalProperties")}
    | {("specversion", "const"), ("type", "const"), ("datacontenttype", "const")}
    | {(f, k) for f in ("id", "source") for k in ("type", "minLength", "maxLength", "pattern")}
    | {("time", k) for k in ("type", "format", "maxLength", "pattern")}
    | {(f, k) for f in ("dataschema", "subject") for k in ("type", "maxLength", "pattern")}
    | {("data", k) for k in ("type", "required", "additionalProperties", "properties")}
    | {(f"data.{f}", k) for f in ("licensee_id", "app_id") for k in ("type", "pattern")}
    | {("data.endpoint", k) for k in ("type", "minLength", "maxLength", "pattern")}
    | {("data.method", "enum")}
    | {(f"data.{f}", k) for f in ("status", "records", "bytes") for k in ("type", "minimum", "maximum")}
    | {("data.requester", k) for k in ("type", "required", "additionalProperties", "properties")}
    | {("data.requester.org_id", k) for k in ("type", "pattern")}
    | {("data.requester.org_type", "enum")}
)
