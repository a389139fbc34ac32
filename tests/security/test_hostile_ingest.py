"""Hostile input against the ingest process over real HTTP: a 4xx naming the field and nothing published,
or a 202 that stored the value verbatim; never a 5xx."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from security_support import Targets, assert_refused

from services.core.events import format_time

pytestmark = pytest.mark.integration

SINGLE = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
BODY = "(body)"
OVERLONG = object()  # stands for the overlong UTF-8 encoding of "/" (0xC0 0xAF), put in the raw bytes
MARK = "@@overlong@@"
VALID: dict[str, Any] = {
    "specversion": "1.0",
    "id": "sec-0",
    "source": "security-gw",
    "type": "io.tollgate.api.call.v1",
    "time": format_time(datetime.now(UTC) - timedelta(days=1)),  # within ingest's maximum age
    "datacontenttype": "application/json",
    "subject": "hostile",
    "data": {
        "licensee_id": "omnisoft",
        "app_id": "omni-search",
        "endpoint": "/2/tweets/search/all",
        "method": "GET",
        "status": 200,
        "records": 3,
        "bytes": 900,
        "requester": {"org_id": "acme", "org_type": "commercial"},
    },
}
HOSTILE: dict[str, Any] = {
    "sql": "'; DROP TABLE usage_entries; --",
    "percent_s": "%s",
    "dollar_1": "$1",
    "nul": "a\x00b",
    "rtl_override": "\u202egnp.exe",
    "rtl_mark": "\u200fomnisoft",
    "emoji": "\U0001f984\u200d\U0001f525",
    "huge": "x" * 100_000,
    "lone_surrogate": "\ud800",
    "overlong_utf8": OVERLONG,
    "integer": 12345,
    "list": ["omnisoft"],
    "object": {"$ne": None},
    "null": None,
    "boolean": True,
    "float": 1.5,
    "negative": -1,
    "huge_integer": 2**70,
}
STRINGS = ("sql", "percent_s", "dollar_1", "rtl_override", "rtl_mark", "emoji")
FREE_TEXT = ("id", "source", "subject", "data.endpoint")
PATTERNED = ("data.licensee_id", "data.app_id", "data.requester.org_id")
ENUMS = ("specversion", "type", "datacontenttype", "data.method", "data.requester.org_type")
INTEGERS = ("data.status", "data.records", "data.bytes")
FIELDS = (*FREE_TEXT, *PATTERNED, *ENUMS, *INTEGERS, "time")


def expected(field: str, kind: str) -> str:
    """'accepted' when the value is legitimate data for the field, else the field the 400 must name."""
    if kind in ("lone_surrogate", "overlong_utf8"):
        return BODY  # not valid UTF-8 JSON: the body as a whole is refused
    if field in FREE_TEXT and kind in STRINGS:
        return "accepted"  # text is data: SQL-ish or exotic characters are stored as they are
    if field in INTEGERS and kind == "integer":
        return "accepted" if field != "data.status" else field  # 12345 is no HTTP status
    return field


def with_value(field: str, value: Any) -> dict[str, Any]:
    """VALID with `field` (dotted) set to `value`, and an id of its own."""
    event = copy.deepcopy(VALID)
    *parents, leaf = field.split(".")
    node = event
    for name in parents:
        node = node[name]
    node[leaf] = MARK if value is OVERLONG else value
    if field != "id":
        event["id"] = f"sec-{field}-{abs(hash(repr(value))) % 10**9}"
    return event


def encode(document: Any) -> bytes:
    """JSON as a gateway might send it; lone surrogates escaped (`\\ud800`), the overlong mark raw."""
    raw = json.dumps(document, ensure_ascii=True).encode("ascii")
    return raw.replace(json.dumps(MARK).encode(), b'"\xc0\xaf"')


def post(http: httpx.Client, targets: Targets, body: bytes, kind: str = SINGLE,
         headers: dict[str, Any] | None = None) -> httpx.Response:  # fmt: skip
    all_headers: dict[str, Any] = {"Content-Type": kind, **targets.bearer("ingest"), **(headers or {})}
    return http.post(f"{targets.ingest_url}/v1/events", content=body, headers=all_headers)


@pytest.mark.parametrize("kind", list(HOSTILE))
@pytest.mark.parametrize("field", FIELDS)
def test_a_hostile_value_in_any_event_field_is_refused_naming_it_or_stored_verbatim(
    http: httpx.Client, targets: Targets, field: str, kind: str
) -> None:
    event = with_value(field, HOSTILE[kind])
    before = targets.topic_end()
    answer = post(http, targets, encode(event))
    outcome = expected(field, kind)
    if outcome == "accepted":
        assert answer.status_code == 202, answer.text[:500]
        assert targets.topic_end() == before + 1
        stored = [orjson.loads(v) for v in targets.read_topic(before)]
        assert event in stored
    else:
        assert_refused(answer, 400, outcome)
        assert targets.topic_end() == before


@pytest.mark.parametrize(("moment", "outcome"), [
    ("9999-12-31T23:59:59Z", "time"),
    ("2999-01-01T00:00:00Z", "time"),
    ("0000-01-01T00:00:00Z", "time"),
    ("2026-02-30T00:00:00Z", "time"),
    ("2026-10-15T10:00:00", "time"),
    ("+275760-09-13T00:00:00Z", "time"),
    ("2026-10-15T10:00:00+99:00", "time"),
    (VALID["time"][:19] + ".123456789123456789Z", "accepted"),
    # Older than the maximum age (35 days): year 1 once crashed the processor.
    ("1970-01-01T00:00:00Z", "time"),
    ("0001-01-01T00:00:00Z", "time"),
])  # fmt: skip
def test_a_timestamp_far_in_the_future_far_in_the_past_or_malformed_is_refused(
    http: httpx.Client, targets: Targets, moment: str, outcome: str
) -> None:
    event = with_value("time", moment)
    before = targets.topic_end()
    answer = post(http, targets, encode(event))
    if outcome == "accepted":
        assert answer.status_code == 202, answer.text
        assert targets.topic_end() == before + 1
    else:
        assert_refused(answer, 400, outcome)
        assert targets.topic_end() == before


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize(("label", "kind", "body", "status", "field"), [
    ("a 2 MiB body", SINGLE, b" " * (2 * 1024 * 1024) + encode(VALID), 413, BODY),
    ("1001 events", BATCH, encode([with_value("id", f"b-{i}") for i in range(1001)]), 413, BODY),
    ("100000 nested arrays", BATCH, _nested(100_000), 400, BODY),
    ("an event nested 500 deep", SINGLE,
     encode({**VALID, "data": {**VALID["data"], "requester": json.loads(_nested(500))}}), 400, "(event)"),
    ("an empty body", SINGLE, b"", 400, BODY),
    ("a NUL byte", SINGLE, b"\x00", 400, BODY),
    ("a UTF-8 BOM", SINGLE, b"\xef\xbb\xbf" + encode(VALID), 400, BODY),
    ("a UTF-16 body", SINGLE, json.dumps(VALID).encode("utf-16"), 400, BODY),
    ("a JSON string", SINGLE, b'"event"', 400, BODY),
    ("an object as a batch", BATCH, encode(VALID), 400, BODY),
    ("a batch of nulls", BATCH, b"[null, 1, \"x\"]", 400, "(event)"),
    ("NaN", SINGLE, b'{"specversion": NaN}', 400, BODY),
    ("a 2000-digit number", SINGLE, b'{"n": ' + b"9" * 2000 + b"}", 400, BODY),
    ("a non-ASCII extension name", SINGLE, encode({**VALID, "\u00e9t\u00e9": "x"}), 400, "(event)"),
    ("an oversized extension", SINGLE, encode({**VALID, "ext": "y" * 5000}), 400, "ext"),
])  # fmt: skip
def test_a_malformed_or_oversized_body_is_refused_and_nothing_published(
    http: httpx.Client, targets: Targets, label: str, kind: str, body: bytes, status: int, field: str
) -> None:
    before = targets.topic_end()
    answer = post(http, targets, body, kind)
    assert answer.status_code == status, f"{label}: {answer.text[:300]}"
    assert answer.json()["errors"], label
    if field != "(event)":
        assert field in {p["field"] for p in answer.json()["errors"]}, answer.text[:300]
    assert targets.topic_end() == before


def test_a_streamed_body_without_content_length_is_cut_off_at_the_limit(
    http: httpx.Client, targets: Targets
) -> None:
    def chunks() -> Any:
        for _ in range(64):
            yield b" " * 65536  # 4 MiB in all, announced by no Content-Length

    before = targets.topic_end()
    answer = http.post(f"{targets.ingest_url}/v1/events", content=chunks(),
                       headers={"Content-Type": SINGLE, **targets.bearer("ingest")})  # fmt: skip
    assert_refused(answer, 413, BODY)
    assert targets.topic_end() == before


@pytest.mark.parametrize(("headers", "status", "field"), [
    ({"Authorization": "Bearer '; DROP TABLE usage_entries; --"}, 401, "Authorization"),
    ({"Authorization": "Bearer tg_%s_$1"}, 401, "Authorization"),
    ({"Authorization": "Bearer tg_" + "a" * 10_000}, 401, "Authorization"),
    ({"Authorization": "Bearer tg_\u00e9\u202e_\U0001f984".encode()}, 401, "Authorization"),
    ({"Authorization": "Basic YWRtaW46YWRtaW4="}, 401, "Authorization"),
    ({"Content-Type": "'; DROP TABLE usage_entries; --"}, 415, "Content-Type"),
    ({"Content-Type": "application/json"}, 415, "Content-Type"),
    ({"Content-Type": "%s"}, 415, "Content-Type"),
])  # fmt: skip
def test_a_hostile_header_is_refused_naming_it(
    http: httpx.Client, targets: Targets, headers: dict[str, Any], status: int, field: str
) -> None:
    before = targets.topic_end()
    answer = post(http, targets, encode(with_value("id", "hdr")), headers=headers)
    assert_refused(answer, status, field)
    assert targets.topic_end() == before


def test_one_bad_event_in_a_batch_refuses_the_batch_and_names_its_index(
    http: httpx.Client, targets: Targets
) -> None:
    batch = [with_value("id", f"batch-{i}") for i in range(5)]
    batch[3] = with_value("data.records", -5)
    before = targets.topic_end()
    answer = post(http, targets, encode(batch), BATCH)
    assert answer.status_code == 400
    assert answer.json()["errors"] == [
        {"index": 3, "field": "data.records", "reason": answer.json()["errors"][0]["reason"]}
    ]
    assert targets.topic_end() == before


def test_the_service_still_serves_after_the_attacks(http: httpx.Client, targets: Targets) -> None:
    assert http.get(f"{targets.ingest_url}/readyz").status_code == 200
    answer = post(http, targets, encode(with_value("id", "after-the-storm")))
    assert answer.status_code == 202
