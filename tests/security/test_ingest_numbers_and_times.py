"""Issue 17's attacks on the ingest process: numbers that are not integers, NUL in the event identity, and
event times out of bounds (the year-1 event once crashed the processor). Each is a 400 naming the field with
nothing published, and a valid event is accepted right after."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from security_support import Targets, assert_refused

from services.core.events import format_time

pytestmark = pytest.mark.integration

SINGLE = "application/cloudevents+json"
NOW = datetime.now(UTC)
MAX_AGE = timedelta(seconds=3_024_000)  # the default the tier runs ingest with
VALID: dict[str, Any] = {
    "specversion": "1.0", "id": "n-0", "source": "security-gw", "type": "io.tollgate.api.call.v1",
    "time": format_time(NOW - timedelta(hours=1)),
    "data": {"licensee_id": "pebble", "app_id": "pebble-app", "endpoint": "/2/users", "method": "GET",
             "status": 200, "records": 3, "bytes": 900,
             "requester": {"org_id": "acme", "org_type": "commercial"}},
}  # fmt: skip


def send(http: httpx.Client, targets: Targets, body: bytes) -> httpx.Response:
    headers = {"Content-Type": SINGLE, **targets.bearer("ingest")}
    return http.post(f"{targets.ingest_url}/v1/events", content=body, headers=headers)


def event(event_id: str, **changes: Any) -> dict[str, Any]:
    document = copy.deepcopy(VALID)
    document["id"] = event_id
    for name, value in changes.items():
        (document["data"] if name in document["data"] else document)[name] = value
    return document


def refused_and_nothing_published(http: httpx.Client, targets: Targets, body: bytes, field: str) -> None:
    before = targets.topic_end()
    assert_refused(send(http, targets, body), 400, field)
    assert targets.topic_end() == before
    after = send(http, targets, json.dumps(event(f"after-{field}-{before}")).encode())
    assert after.status_code == 202, after.text
    assert targets.topic_end() == before + 1


@pytest.mark.parametrize("field", ["records", "status", "bytes"])
@pytest.mark.parametrize("literal", ["1.0", "1e2", "2E2", "200.0", "-0.0"])
def test_a_float_literal_in_an_integer_field_is_refused_naming_it(
    http: httpx.Client, targets: Targets, field: str, literal: str
) -> None:
    body = json.dumps(event(f"num-{field}-{literal}", **{field: "@@"})).replace('"@@"', literal).encode()
    refused_and_nothing_published(http, targets, body, f"data.{field}")


@pytest.mark.parametrize("field", ["id", "source"])
@pytest.mark.parametrize("value", ["\x00", "gw\x00", "a\x00b"])
def test_a_nul_in_the_id_or_source_is_refused_naming_it(
    http: httpx.Client, targets: Targets, field: str, value: str
) -> None:
    document = event("nul-identity")
    document[field] = value
    refused_and_nothing_published(http, targets, json.dumps(document).encode(), field)


@pytest.mark.parametrize("moment", [
    "0001-01-01T00:00:00Z",
    "1970-01-01T00:00:00Z",
    -MAX_AGE - timedelta(minutes=5),  # offsets from the clock when the test runs, not when it is collected
    timedelta(minutes=10),
    "2100-01-01T00:00:00Z",
    "\uff12\uff10\uff12\uff16-10-15T10:00:00Z",
    VALID["time"][:18] + "\u0665Z",
])  # fmt: skip
def test_an_event_time_out_of_bounds_or_of_other_digits_is_refused_naming_time(
    http: httpx.Client, targets: Targets, moment: str | timedelta
) -> None:
    if isinstance(moment, timedelta):
        moment = format_time(datetime.now(UTC) + moment)
    refused_and_nothing_published(http, targets, json.dumps(event("bad-time", time=moment)).encode(), "time")


@pytest.mark.parametrize("age", [timedelta(days=34), timedelta(0)])
def test_an_event_time_inside_the_bounds_is_accepted(
    http: httpx.Client, targets: Targets, age: timedelta
) -> None:
    before = targets.topic_end()
    answer = send(
        http, targets,
        json.dumps(event(f"in-bounds-{age.days}", time=format_time(datetime.now(UTC) - age))).encode(),
    )
    assert answer.status_code == 202, answer.text
    assert targets.topic_end() == before + 1
