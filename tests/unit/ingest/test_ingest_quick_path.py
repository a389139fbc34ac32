"""Ingest's quick path for valid events answers exactly what the full checks answer, event by event."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from ingest_support import api_call_event

from services.core.events import parse_time
from services.core.schemas import API_CALL_TYPE, problems
from services.ingest.validation import (
    MAX_AGE,
    MAX_DEPTH,
    event_problems,
    nested_deeper_than,
    problem,
    time_problem,
)

NOW = datetime(2026, 11, 1, tzinfo=UTC)
FIVE_MINUTES = timedelta(minutes=5)


def full_checks(index: int, document: Any) -> list[dict[str, Any]]:
    """The checks before the quick path existed: depth, every schema check, then the time bounds."""
    if nested_deeper_than(document, MAX_DEPTH):
        return [problem(index, "(event)", f"nested deeper than {MAX_DEPTH} levels")]
    found = [problem(index, p["field"], p["reason"]) for p in problems(API_CALL_TYPE, document)]
    if found:
        return found
    try:
        at = parse_time(document["time"])
    except (ValueError, OverflowError) as exc:
        return [problem(index, "time", f"not an RFC 3339 timestamp: {str(exc)[:120]}")]
    reason = time_problem(at, NOW, FIVE_MINUTES, MAX_AGE)
    return [problem(index, "time", reason)] if reason else []


def event(**data: Any) -> dict[str, Any]:
    base = api_call_event("quick-1", source="gateway-a", licensee="omnisoft", records=3, size=900)
    base["data"].update(data)
    return base


def deep(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = [value]
    return value


EXAMPLES = [
    event(),
    {**event(), "time": "2026-10-31T23:59:60Z"},  # a leap second: the schema's format allows it, Python not
    {**event(), "time": "2026-12-01T00:00:00Z"},  # a month ahead
    {**event(), "time": "2025-01-01T00:00:00+01:00"},  # too old
    {**event(), "ext": deep(20)},
    event(requester=deep(20)),
    event(status=200.0),
    event(records=True),
    {**event(), "id": "a\x00"},
    [event()],
    "not an event",
]


def test_each_example_gets_the_answer_of_the_full_checks() -> None:
    for index, document in enumerate(EXAMPLES):
        assert event_problems(index, document, NOW, FIVE_MINUTES) == full_checks(index, document)


TIME = st.from_regex(
    r"\A20[0-9]{2}-[01][0-9]-[0-3][0-9][Tt][0-2][0-9]:[0-5][0-9]:[0-6][0-9](Z|[+-]0[0-9]:[0-9]{2})\Z"
)
FIELDS = st.sampled_from(["licensee_id", "app_id", "endpoint", "method", "status", "records", "bytes"])
VALUES = st.none() | st.booleans() | st.integers(-5, 2**41) | st.floats(allow_nan=False) | st.text(max_size=9)


@settings(max_examples=300, deadline=None)
@given(TIME, st.dictionaries(FIELDS, VALUES, max_size=2))
def test_any_time_and_data_get_the_answer_of_the_full_checks(time: str, data: dict[str, Any]) -> None:
    document = {**event(**data), "time": time}
    assert event_problems(0, document, NOW, FIVE_MINUTES) == full_checks(0, document)
