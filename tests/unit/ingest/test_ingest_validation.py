"""The pure checks: media types, body shapes, per-event problems, sources and in-batch repeats."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import orjson
import pytest

from services.core.tokens import Principal
from services.ingest.errors import Refused
from services.ingest.validation import (
    BATCH,
    SINGLE,
    accept,
    check_sources,
    dedupe,
    event_problems,
    media_kind,
    parse_body,
    to_records,
)

NOW = datetime(2026, 11, 1, tzinfo=UTC)
FIVE_MINUTES = timedelta(minutes=5)
GATEWAY = Principal("t1", "gateway", "ingest")


@pytest.mark.parametrize(
    ("content_type", "kind"),
    [
        (SINGLE, "single"),
        (BATCH, "batch"),
        (f" {BATCH} ; charset=UTF-8", "batch"),
        (SINGLE.upper(), "single"),
    ],
)
def test_the_media_type_names_the_mode(content_type: str, kind: str) -> None:
    assert media_kind(content_type) == kind


@pytest.mark.parametrize("content_type", [None, "", "application/json", "multipart/form-data", SINGLE + "x"])
def test_any_other_media_type_is_refused_with_415(content_type: str | None) -> None:
    with pytest.raises(Refused) as caught:
        media_kind(content_type)
    assert caught.value.status == 415


def test_a_batch_over_the_limit_is_refused_before_any_event_is_checked() -> None:
    with pytest.raises(Refused) as caught:
        parse_body("batch", orjson.dumps([{}] * 11), max_batch=10)
    assert (caught.value.status, caught.value.events) == (413, 11)


def test_a_valid_event_has_no_problems(api_call: Callable[..., dict[str, Any]]) -> None:
    assert event_problems(0, api_call(), NOW, FIVE_MINUTES) == []


MAX_AGE = timedelta(seconds=3_024_000)


@pytest.mark.parametrize(
    ("ahead", "problem"),
    [
        (timedelta(0), False),
        (FIVE_MINUTES, False),
        (FIVE_MINUTES + timedelta(seconds=1), True),
        (-MAX_AGE, False),
        (-MAX_AGE - timedelta(seconds=1), True),
        (timedelta(days=-3650), True),
        (datetime(1, 1, 1, tzinfo=UTC) - NOW, True),
    ],
)
def test_only_events_within_the_age_and_lead_bounds_are_accepted(
    api_call: Callable[..., dict[str, Any]], ahead: timedelta, problem: bool
) -> None:
    event = api_call(time=(NOW + ahead).isoformat())
    found = event_problems(0, event, NOW, FIVE_MINUTES, MAX_AGE)
    assert bool(found) is problem
    assert {p["field"] for p in found} <= {"time"}


def test_the_default_maximum_age_is_35_days(api_call: Callable[..., dict[str, Any]]) -> None:
    assert event_problems(0, api_call(time=(NOW - timedelta(days=35)).isoformat()), NOW, FIVE_MINUTES) == []
    assert event_problems(0, api_call(time=(NOW - timedelta(days=36)).isoformat()), NOW, FIVE_MINUTES)


def test_foreign_sources_are_listed_by_index(api_call: Callable[..., dict[str, Any]]) -> None:
    bound = Principal("t2", "gateway a", "ingest", ("gateway-a",))
    events = [api_call(0), api_call(1, source="gateway-b"), api_call(2)]
    check_sources(GATEWAY, events)
    with pytest.raises(Refused) as caught:
        check_sources(bound, events)
    assert (caught.value.status, [p["index"] for p in caught.value.problems]) == (403, [1])


def test_repeats_keep_the_first_occurrence(api_call: Callable[..., dict[str, Any]]) -> None:
    first = api_call(1, data__records=1)
    later = api_call(1, data__records=2)
    accepted = dedupe([first, api_call(2), later])
    assert (accepted.events, accepted.duplicates, accepted.received) == ([first, api_call(2)], 1, 3)


def test_records_are_keyed_by_licensee_and_carry_the_envelope(
    api_call: Callable[..., dict[str, Any]],
) -> None:
    event = api_call(licensee="pebble")
    [record] = to_records([event])
    assert (record.key, orjson.loads(record.value)) == (b"pebble", event)


def test_validating_a_full_batch_takes_well_under_the_produce_budget(
    api_call: Callable[..., dict[str, Any]],
) -> None:
    body = orjson.dumps([api_call(n) for n in range(1000)])
    started = time.perf_counter()
    accepted = accept("batch", body, GATEWAY, NOW, 1000, FIVE_MINUTES)
    elapsed = time.perf_counter() - started
    assert len(accepted.events) == 1000
    assert elapsed < 0.5


def _asgi_post(app: Any, headers: list[tuple[bytes, bytes]], chunks: list[bytes]) -> tuple[int, bytes]:
    """Drive the ASGI app directly, so the request can claim a Content-Length that is a lie."""
    sent: list[dict[str, Any]] = []
    pending = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)
    ]

    async def receive() -> dict[str, Any]:
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/events",
        "raw_path": b"/v1/events",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    anyio.run(app, scope, receive, send)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


def test_a_lying_content_length_does_not_get_a_large_body_through(
    make_ingest: Callable[..., Any], api_call: Callable[..., dict[str, Any]]
) -> None:
    ingest = make_ingest(max_bytes=4096)
    large = orjson.dumps([api_call(n) for n in range(20)])
    headers = [
        (b"content-type", BATCH.encode()),
        (b"authorization", f"Bearer {ingest.token}".encode()),
        (b"content-length", b"100"),
    ]
    status, body = _asgi_post(
        ingest.client.app, headers, [large[i : i + 1000] for i in range(0, len(large), 1000)]
    )
    assert status == 413
    assert orjson.loads(body)["errors"][0]["field"] == "(body)"
    assert ingest.publisher.records == []


def _refused(body: bytes) -> list[tuple[str, str]]:
    """(field, reason) of every problem `accept` finds in a single-event body; empty when accepted."""
    try:
        accept("single", body, GATEWAY, NOW, 1000)
    except Refused as exc:
        assert exc.status == 400
        return [(p["field"], p["reason"]) for p in exc.problems]
    return []


@pytest.mark.parametrize("field", ["records", "status", "bytes"])
@pytest.mark.parametrize(("literal", "refused"), [
    (b"200", False), (b"200.0", True), (b"2e2", True), (b"2E+2", True), (b"200.000", True), (b"2.5e1", True),
])  # fmt: skip
def test_an_integer_field_takes_only_integer_literals(
    api_call: Callable[..., dict[str, Any]], field: str, literal: bytes, refused: bool
) -> None:
    # Written into the raw body, as a gateway would: orjson reads 2e2 as the float 200.0.
    body = orjson.dumps(api_call(**{f"data__{field}": "@@"})).replace(b'"@@"', literal)
    assert {f for f, _ in _refused(body)} == ({f"data.{field}"} if refused else set())


@pytest.mark.parametrize("field", ["id", "source"])
@pytest.mark.parametrize("value", ["\x00", "a\x00b", "gw\x00"])
def test_a_nul_in_the_id_or_source_is_refused_naming_it(
    api_call: Callable[..., dict[str, Any]], field: str, value: str
) -> None:
    assert [f for f, _ in _refused(orjson.dumps(api_call(**{field: value})))] == [field]
