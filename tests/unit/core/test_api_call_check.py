"""The quick api-call check says yes only where the schema's validators do, and knows every schema keyword."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ingest_support import api_call_event

from services.core.api_call_check import KNOWN_KEYWORDS, surely_valid
from services.core.schemas import API_CALL_TYPE, load_schema, problems
from services.demo.scenario import demo_calls

ANNOTATIONS = {"$schema", "$id", "title", "description"}
DELETE = object()


def schema_keywords(node: dict[str, Any], path: str = "") -> set[tuple[str, str]]:
    """(path, keyword) of every keyword in the schema, walking `properties`."""
    found = {(path, keyword) for keyword in node}
    for name, child in node.get("properties", {}).items():
        found |= schema_keywords(child, f"{path}.{name}" if path else name)
    return found


def valid_event() -> dict[str, Any]:
    return api_call_event("check-1", source="gateway-a", licensee="omnisoft", records=3, size=900)


def changed(event: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    """A deep copy of `event` with `value` at `path` (DELETE removes the member)."""
    result = copy.deepcopy(event)
    node = result
    for name in path[:-1]:
        node = node[name]
    if value is DELETE:
        node.pop(path[-1], None)
    else:
        node[path[-1]] = value
    return result


def test_the_check_implements_every_keyword_of_the_api_call_schema() -> None:
    assert schema_keywords(load_schema(API_CALL_TYPE)) == KNOWN_KEYWORDS


def test_every_demo_call_is_surely_valid() -> None:
    events = [call.to_cloudevent() for call in demo_calls()]
    assert all(problems(API_CALL_TYPE, event) == [] for event in events)
    assert all(surely_valid(event) for event in events)


@pytest.mark.parametrize(
    "extra",
    [
        {"subject": "s", "dataschema": "https://example.com/schema"},
        {"traceparent": "00-abc-def-01", "retries": 3, "sampled": True},
    ],
)
def test_optional_attributes_and_extensions_stay_on_the_quick_path(extra: dict[str, Any]) -> None:
    event = {**valid_event(), **extra}
    assert problems(API_CALL_TYPE, event) == []
    assert surely_valid(event)


TRICKY = [
    (("time",), "2026-02-29T00:00:00Z"),  # not a leap year
    (("time",), "2100-02-29T00:00:00Z"),  # a century without a leap day
    (("time",), "2026-04-31T00:00:00Z"),
    (("time",), "2026-10-15T24:00:00Z"),
    (("time",), "2026-10-15T10:00:00+24:00"),
    (("time",), "2026-10-15T10:00:00+00:75"),
    (("time",), "2026-10-15T10:00:00Z\n"),
    (("time",), "\uff12\uff10\uff12\uff16-10-15T10:00:00Z"),  # fullwidth digits
    (("id",), ""),
    (("id",), "a\x00b"),
    (("source",), "x" * 513),
    (("specversion",), "1.1"),
    (("type",), "io.tollgate.alert.v1"),
    (("datacontenttype",), "text/plain"),
    (("data", "licensee_id"), "omnisoft\n"),
    (("data", "licensee_id"), "-omnisoft"),
    (("data", "app_id"), "a" * 129),
    (("data", "requester", "org_id"), ""),
    (("data", "requester", "org_type"), "military"),
    (("data", "method"), "get"),
    (("data", "status"), 200.0),
    (("data", "status"), True),
    (("data", "status"), 600),
    (("data", "records"), -1),
    (("data", "records"), 1e2),
    (("data", "bytes"), 2**40 + 1),
    (("data", "endpoint"), ""),
    (("data", "extra"), 1),
    (("data", "requester", "extra"), "x"),
    (("data", "requester"), DELETE),
    (("data",), []),
    (("Upper",), "x"),
    (("x" * 21,), "x"),
    (("ext",), 1.0),
    (("ext",), None),
    (("ext",), [1]),
    (("ext",), "x" * 1025),
    (("time",), DELETE),
]


@pytest.mark.parametrize(("path", "value"), TRICKY)
def test_what_the_validators_refuse_is_never_surely_valid(path: tuple[str, ...], value: Any) -> None:
    event = changed(valid_event(), path, value)
    assert problems(API_CALL_TYPE, event) != []
    assert not surely_valid(event)


PATHS = [
    ("specversion",), ("id",), ("source",), ("type",), ("time",), ("datacontenttype",), ("dataschema",),
    ("subject",), ("data",), ("data", "licensee_id"), ("data", "app_id"), ("data", "endpoint"),
    ("data", "method"), ("data", "status"), ("data", "records"), ("data", "bytes"), ("data", "requester"),
    ("data", "requester", "org_id"), ("data", "requester", "org_type"), ("data", "requester", "x"),
    ("data", "x"), ("ext",), ("Ext",), ("e" * 20,), ("e" * 21,),
]  # fmt: skip
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)
NEAR_VALID = st.sampled_from(
    ["1.0", "io.tollgate.api.call.v1", "application/json", "GET", "government", "omnisoft", 200, 0, 2**40]
)
TIMES = st.from_regex(
    r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,3})?([Zz]|[+-][0-9]{2}:[0-9]{2})\Z"
)
IDS = st.from_regex(r"\A[A-Za-z0-9._:@/\-\n\x00]{0,130}\Z")
VALUES = JSON | NEAR_VALID | TIMES | IDS | st.integers(-2, 2**41) | st.just(DELETE)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(PATHS), VALUES), min_size=1, max_size=3))
def test_a_changed_event_is_surely_valid_only_when_the_validators_find_nothing(
    changes: list[tuple[tuple[str, ...], Any]],
) -> None:
    event = valid_event()
    for path, value in changes:
        try:
            event = changed(event, path, value)
        except (KeyError, TypeError, IndexError, AttributeError):
            continue  # the parent of `path` is gone or no longer an object (a string has no .pop)
    if surely_valid(event):
        assert problems(API_CALL_TYPE, event) == []
