"""`tollgate replay` reads JSON lines or arrays and sends them, retrying 503s as Retry-After says."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from services.clients.replay import ReplayError, load_events, replay_http
from services.core.errors import ValidationFailed


def test_json_lines_and_json_arrays_are_both_read(tmp_path: Path, api_call: Callable[..., Any]) -> None:
    events = [api_call(n) for n in range(3)]
    lines, array = tmp_path / "events.jsonl", tmp_path / "events.json"
    lines.write_bytes(b"\n".join(orjson.dumps(e) for e in events) + b"\n\n")
    array.write_bytes(orjson.dumps(events))
    assert load_events(lines) == load_events(array) == events


def test_a_bad_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": 1}\n{oops\n')
    with pytest.raises(ValidationFailed, match="line 2"):
        load_events(path)


def test_events_go_in_batches_and_progress_is_reported(ingest: Any, api_call: Callable[..., Any]) -> None:
    # The repeat of event 3 lands in another request: only the processor dedupes across requests.
    events = [api_call(n) for n in range(25)] + [api_call(3)]
    progress: list[tuple[int, int]] = []
    result = replay_http(
        events,
        "http://testserver",
        ingest.token,
        batch=10,
        on_progress=lambda done, total: progress.append((done, total)),
        client=ingest.client,
    )
    assert (result.sent, result.accepted, result.duplicates) == (26, 26, 0)
    assert progress == [(10, 26), (20, 26), (26, 26)]
    assert len(ingest.publisher.records) == 26


def _flaky(answers: list[httpx.Response]) -> tuple[httpx.Client, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answers.pop(0)

    return httpx.Client(transport=httpx.MockTransport(handle)), seen


def test_a_503_is_retried_after_the_delay_the_service_asks_for(api_call: Callable[..., Any]) -> None:
    client, seen = _flaky(
        [
            httpx.Response(503, headers={"Retry-After": "7"}, json={"errors": []}),
            httpx.Response(503, json={"errors": []}),
            httpx.Response(202, json={"accepted": 1, "duplicates": 0}),
        ]
    )
    slept: list[float] = []
    result = replay_http([api_call(1)], "http://ingest/", "tok", client=client, sleep=slept.append)
    assert (result.accepted, result.retries) == (1, 2)
    assert slept == [7.0, 1.0]
    assert {str(r.url) for r in seen} == {"http://ingest/v1/events"}
    assert seen[0].headers["Authorization"] == "Bearer tok"
    assert seen[0].headers["Content-Type"] == "application/cloudevents-batch+json"


def test_a_refused_batch_stops_the_replay_with_the_reason(api_call: Callable[..., Any]) -> None:
    client, _ = _flaky([httpx.Response(400, json={"errors": [{"index": 0, "field": "id", "reason": "bad"}]})])
    with pytest.raises(ReplayError, match="400"):
        replay_http([api_call(1)], "http://ingest", "tok", client=client, sleep=lambda _: None)


def test_a_replay_gives_up_when_the_service_stays_unavailable(api_call: Callable[..., Any]) -> None:
    client, _ = _flaky([httpx.Response(503, headers={"Retry-After": "60"})] * 5)
    with pytest.raises(ReplayError, match="deadline"):
        replay_http([api_call(1)], "http://ingest", "tok", client=client, max_wait=30, sleep=lambda _: None)
