"""POST /v1/events answers as the contract says: 202 only when stored, a clear 4xx for every bad input."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest

from services.ingest.validation import BATCH, SINGLE

Event = dict[str, Any]
MakeEvent = Callable[..., Event]


def published(ingest: Any) -> list[tuple[str, Event]]:
    return [(r.key.decode(), orjson.loads(r.value)) for r in ingest.publisher.records]


def test_one_event_is_accepted_and_published_keyed_by_licensee(ingest: Any, event: Event) -> None:
    response = ingest.post_one(event)
    assert (response.status_code, response.json()) == (202, {"accepted": 1, "duplicates": 0})
    assert published(ingest) == [("omnisoft", event)]


def test_a_batch_is_published_in_order(ingest: Any, api_call: MakeEvent) -> None:
    batch = [api_call(n, licensee=f"lic-{n % 3}") for n in range(50)]
    response = ingest.post(batch)
    assert (response.status_code, response.json()) == (202, {"accepted": 50, "duplicates": 0})
    assert published(ingest) == [(e["data"]["licensee_id"], e) for e in batch]


def test_repeats_of_source_and_id_in_one_request_are_published_once(ingest: Any, api_call: MakeEvent) -> None:
    first, second = api_call(1), api_call(2)
    same_id_other_source = api_call(1, source="gateway-b")
    response = ingest.post([first, second, api_call(1), same_id_other_source, api_call(2)])
    assert (response.status_code, response.json()) == (202, {"accepted": 3, "duplicates": 2})
    assert [e for _, e in published(ingest)] == [first, second, same_id_other_source]


def test_an_empty_batch_is_accepted_with_nothing_published(ingest: Any) -> None:
    response = ingest.post([])
    assert (response.status_code, response.json()) == (202, {"accepted": 0, "duplicates": 0})
    assert ingest.publisher.records == []


@pytest.mark.parametrize(
    ("content_type", "status"),
    [
        (SINGLE, 202),
        (f"{SINGLE}; charset=utf-8", 202),
        ("Application/CloudEvents+JSON", 202),
        ("application/json", 415),
        ("text/plain", 415),
        ("application/cloudevents", 415),
        ("", 415),
    ],
)
def test_only_the_cloudevents_media_types_are_taken(
    ingest: Any, event: Event, content_type: str, status: int
) -> None:
    response = ingest.post(orjson.dumps(event), content_type=content_type)
    assert response.status_code == status
    if status == 415:
        assert response.json()["errors"][0]["field"] == "Content-Type"


@pytest.mark.parametrize(
    ("authorization", "error"),
    [
        (None, None),
        ("", None),
        ("Basic dXNlcjpwYXNz", None),
        ("Bearer", None),
        ("Bearer ", None),
        ("Bearer tg_abcdef_wrong", "invalid_token"),
        ("Bearer not-a-token-at-all", "invalid_token"),
    ],
)
def test_a_missing_or_wrong_bearer_token_gets_401(
    ingest: Any, event: Event, authorization: str | None, error: str | None
) -> None:
    headers = {"Content-Type": SINGLE}
    if authorization is not None:
        headers["Authorization"] = authorization
    response = ingest.client.post("/v1/events", content=orjson.dumps(event), headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert (error or "no error") in (response.headers["WWW-Authenticate"] if error else "no error")
    assert response.json()["errors"][0]["field"] == "Authorization"
    assert ingest.publisher.records == []


def test_a_revoked_token_gets_401(ingest: Any, event: Event) -> None:
    token = ingest.tokens.create("old gateway", "ingest")
    ingest.tokens.revoke(token.split("_")[1])
    assert ingest.post_one(event, token=token).status_code == 401


def test_the_scheme_name_is_case_insensitive(ingest: Any, event: Event) -> None:
    response = ingest.post_one(event, headers={"Authorization": f"bearer {ingest.token}"})
    assert response.status_code == 202


@pytest.mark.parametrize("role", ["finance", "auditor"])
def test_a_token_of_another_role_gets_403(ingest: Any, event: Event, role: str) -> None:
    response = ingest.post_one(event, token=ingest.tokens.create("reader", role))
    assert response.status_code == 403
    assert "may not send" in response.json()["errors"][0]["reason"]


def test_a_token_bound_to_sources_may_send_only_those(ingest: Any, api_call: MakeEvent) -> None:
    token = ingest.tokens.create("gateway a", "ingest", ["gateway-a"])
    assert ingest.post([api_call(1)], token=token).status_code == 202
    response = ingest.post(
        [api_call(2), api_call(3, source="gateway-b"), api_call(4, source="x")], token=token
    )
    assert response.status_code == 403
    assert [(p["index"], p["field"]) for p in response.json()["errors"]] == [(1, "source"), (2, "source")]
    assert len(ingest.publisher.records) == 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"id": ""}, "id"),
        ({"id": "<delete>"}, "id"),
        ({"source": 7}, "source"),
        ({"specversion": "0.3"}, "specversion"),
        ({"type": "io.tollgate.alert.v1"}, "type"),
        ({"time": "yesterday"}, "time"),
        ({"time": "2026-10-15T10:00:00"}, "time"),
        ({"time": "2026-10-15T23:59:60Z"}, "time"),
        ({"data": "<delete>"}, "data"),
        ({"data__records": -1}, "data.records"),
        ({"data__records": 2.5}, "data.records"),
        ({"data__records": "25"}, "data.records"),
        ({"data__status": 99}, "data.status"),
        ({"data__method": "FETCH"}, "data.method"),
        ({"data__licensee_id": "<delete>"}, "data.licensee_id"),
        ({"data__licensee_id": "has space"}, "data.licensee_id"),
        ({"data__app_id": ""}, "data.app_id"),
        ({"data__bytes": None}, "data.bytes"),
        ({"data__requester__org_type": "military"}, "data.requester.org_type"),
        ({"data__requester__org_id": "<delete>"}, "data.requester.org_id"),
        ({"data__extra": 1}, "data"),
    ],
)
def test_each_bad_field_is_named_with_its_index(
    ingest: Any, api_call: MakeEvent, change: dict[str, Any], field: str
) -> None:
    bad = api_call(1, **change)
    response = ingest.post([api_call(0), bad])
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert {(e["index"], e["field"]) for e in errors} >= {(1, field)}
    assert all(e["index"] == 1 and e["reason"] for e in errors)
    assert ingest.publisher.records == []


def test_every_bad_event_of_a_batch_is_reported_and_none_is_published(
    ingest: Any, api_call: MakeEvent
) -> None:
    batch = [api_call(0), api_call(1, data__records=-5), api_call(2), api_call(3, data__method="X", id="")]
    response = ingest.post(batch)
    assert response.status_code == 400
    assert sorted((e["index"], e["field"]) for e in response.json()["errors"]) == [
        (1, "data.records"),
        (3, "data.method"),
        (3, "id"),
    ]
    assert ingest.publisher.records == []


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [
        (b"{not json", SINGLE, "malformed JSON"),
        (b"", SINGLE, "malformed JSON"),
        (b"\xff\xfe", BATCH, "malformed JSON"),
        (b"[" * 5000 + b"]" * 5000, BATCH, "malformed JSON"),
        (b"[]", SINGLE, "expected one event object"),
        (b"42", SINGLE, "expected one event object"),
        (b"{}", BATCH, "expected a JSON array"),
        (b'"text"', BATCH, "expected a JSON array"),
    ],
)
def test_a_body_that_is_not_the_right_json_gets_400_on_the_body(
    ingest: Any, body: bytes, content_type: str, reason: str
) -> None:
    response = ingest.post(body, content_type=content_type)
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert (error["index"], error["field"]) == (None, "(body)")
    assert reason in error["reason"]


def test_batch_members_that_are_not_objects_are_named(ingest: Any, api_call: MakeEvent) -> None:
    response = ingest.post([api_call(0), 5, None, []])
    assert response.status_code == 400
    assert sorted(e["index"] for e in response.json()["errors"]) == [1, 2, 3]


@pytest.mark.parametrize(
    ("time", "status"),
    [
        ("2026-11-01T12:05:00Z", 202),
        ("2026-11-01T12:05:01Z", 400),
        ("2026-11-02T00:00:00Z", 400),
        ("9999-12-31T23:59:59Z", 400),
        ("9999-12-31T23:59:59-23:59", 400),
        ("0001-01-01T00:00:00+23:59", 400),
        ("0001-01-01T00:00:00Z", 400),
        ("1970-01-01T00:00:00Z", 400),
        ("2026-09-27T12:00:00Z", 202),
        ("2026-09-27T11:59:59Z", 400),
        ("2026-10-01T02:00:00+02:00", 202),
        ("\uff12\uff10\uff12\uff16-10-15T10:00:00Z", 400),
        ("2026-10-15T10:00:0\u0665Z", 400),
    ],
)
def test_event_time_must_parse_and_lie_between_the_maximum_age_and_lead(
    ingest: Any, api_call: MakeEvent, time: str, status: int
) -> None:
    response = ingest.post([api_call(time=time)])
    assert response.status_code == status, response.text
    if status == 400:
        assert response.json()["errors"][0]["field"] == "time"


def test_more_events_than_the_batch_limit_get_413(
    make_ingest: Callable[..., Any], api_call: MakeEvent
) -> None:
    ingest = make_ingest(max_batch=3)
    assert ingest.post([api_call(n) for n in range(3)]).status_code == 202
    response = ingest.post([api_call(n) for n in range(4)])
    assert response.status_code == 413
    assert "at most 3" in response.json()["errors"][0]["reason"]


def test_a_body_larger_than_the_byte_limit_gets_413(
    make_ingest: Callable[..., Any], api_call: MakeEvent
) -> None:
    ingest = make_ingest(max_bytes=4096)
    small = orjson.dumps([api_call(n) for n in range(5)])
    large = orjson.dumps([api_call(n) for n in range(20)])
    assert len(small) < 4096 < len(large)
    assert ingest.post(small).status_code == 202
    response = ingest.post(large)
    assert response.status_code == 413
    assert response.json()["errors"][0]["field"] == "(body)"


def test_a_chunked_body_without_content_length_is_counted_while_read(
    make_ingest: Callable[..., Any], api_call: MakeEvent
) -> None:
    ingest = make_ingest(max_bytes=4096)
    large = orjson.dumps([api_call(n) for n in range(20)])

    def chunks() -> Any:
        for start in range(0, len(large), 1000):
            yield large[start : start + 1000]

    response = ingest.post(chunks())
    assert response.status_code == 413
    assert ingest.publisher.records == []


def test_the_ingest_service_answers_503_with_retry_after_when_kafka_does_not_acknowledge(
    ingest: Any, event: Event
) -> None:
    ingest.publisher.available = False
    response = ingest.post_one(event)
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) == ingest.settings.retry_after_seconds
    assert response.json()["errors"][0]["reason"]
    ingest.publisher.available = True
    assert ingest.post_one(event).status_code == 202


def test_probes_say_alive_always_and_ready_only_when_kafka_is(ingest: Any) -> None:
    assert ingest.client.get("/healthz").status_code == 200
    assert ingest.client.get("/readyz").status_code == 200
    ingest.publisher.available = False
    assert ingest.client.get("/healthz").status_code == 200
    assert ingest.client.get("/readyz").status_code == 503


def test_other_methods_and_paths_are_not_served(ingest: Any) -> None:
    assert ingest.client.get("/v1/events").status_code == 405
    assert ingest.client.post("/v2/events").status_code == 404


def test_metrics_count_events_requests_batches_and_produce_errors(ingest: Any, api_call: MakeEvent) -> None:
    ingest.post([api_call(1), api_call(2), api_call(1)])
    ingest.post([api_call(3, data__records=-1), api_call(4)])
    ingest.publisher.available = False
    ingest.post([api_call(5)])
    ingest.post([api_call(6)], token="wrong")  # noqa: S106 - a deliberately bad token
    assert ingest.sample("tollgate_ingest_events_total", {"outcome": "accepted"}) == 2
    assert ingest.sample("tollgate_ingest_events_total", {"outcome": "duplicate"}) == 1
    assert ingest.sample("tollgate_ingest_events_total", {"outcome": "rejected"}) == 3
    for status in ("202", "400", "503", "401"):
        assert ingest.sample("tollgate_ingest_requests_total", {"status": status}) == 1
    assert ingest.sample("tollgate_ingest_request_seconds_count") == 4
    assert ingest.sample("tollgate_ingest_batch_size_count") == 1
    assert ingest.sample("tollgate_ingest_batch_size_sum") == 3
    assert ingest.sample("tollgate_ingest_produce_errors_total") == 1


def test_closing_the_app_closes_the_publisher(ingest: Any) -> None:
    with ingest.client:
        pass
    assert ingest.publisher.closed


def test_the_openapi_document_describes_both_media_types_and_every_answer(ingest: Any) -> None:
    spec = ingest.client.get("/openapi.json").json()
    post = spec["paths"]["/v1/events"]["post"]
    content = post["requestBody"]["content"]
    assert content[SINGLE]["schema"] == {"$ref": "#/components/schemas/ApiCallEvent"}
    assert content[BATCH]["schema"] == {"$ref": "#/components/schemas/ApiCallBatch"}
    assert set(post["responses"]) == {"202", "400", "401", "403", "413", "415", "503"}
    assert "Retry-After" in post["responses"]["503"]["headers"]
    assert spec["components"]["schemas"]["ApiCallEvent"]["properties"]["type"] == {
        "const": "io.tollgate.api.call.v1"
    }
