"""A broker outage gives fast 503s with Retry-After; the same process takes events again once it is back."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest

from services.core import topics

pytestmark = [pytest.mark.integration, pytest.mark.slow]
TIMEOUT = 2.0


def _post_until_accepted(
    ingest: Any, events: list[dict[str, Any]], within: float
) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    while True:
        response = ingest.post(events)
        if response.status_code == 202 or time.monotonic() - started > within:
            return response, time.monotonic() - started
        assert response.status_code == 503
        time.sleep(0.5)


def _wait_ready(ingest: Any, expected: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if ingest.client.get(f"{ingest.url}/readyz").status_code == expected:
            return True
        time.sleep(0.3)
    return False


def test_the_service_starts_while_kafka_is_down_and_becomes_ready_when_it_comes_up(
    private_kafka: Any, live_ingest: Callable[..., Any], api_call: Callable[..., dict[str, Any]]
) -> None:
    private_kafka.stop()
    ingest = live_ingest(private_kafka.bootstrap, topics.API_CALLS, produce_timeout_seconds=TIMEOUT)
    assert ingest.client.get(f"{ingest.url}/healthz").status_code == 200
    assert ingest.client.get(f"{ingest.url}/readyz").status_code == 503
    started = time.monotonic()
    response = ingest.post([api_call(1)])
    assert response.status_code == 503
    assert time.monotonic() - started < TIMEOUT + 1.5
    private_kafka.start()
    assert _wait_ready(ingest, 200, within=30)
    response, _ = _post_until_accepted(ingest, [api_call(1)], within=30)
    assert response.status_code == 202


def test_a_broker_outage_gives_503_with_retry_after_fast_then_202_again_without_restart(
    private_kafka: Any, live_ingest: Callable[..., Any], api_call: Callable[..., dict[str, Any]]
) -> None:
    ingest = live_ingest(private_kafka.bootstrap, topics.API_CALLS, produce_timeout_seconds=TIMEOUT)
    before = [api_call(100 + n, source="outage") for n in range(50)]
    assert ingest.post(before).status_code == 202

    private_kafka.stop()
    timings = []
    for attempt in range(3):
        started = time.monotonic()
        response = ingest.post([api_call(200 + attempt, source="outage")])
        timings.append(time.monotonic() - started)
        assert response.status_code == 503, response.text
        assert int(response.headers["Retry-After"]) >= 1
        assert response.json()["errors"][0]["reason"]
    assert max(timings) < TIMEOUT + 1.5, timings
    assert _wait_ready(ingest, 503, within=5)

    private_kafka.start()
    after = [api_call(300 + n, source="outage") for n in range(50)]
    response, _ = _post_until_accepted(ingest, after, within=60)
    assert response.status_code == 202, response.text
    assert _wait_ready(ingest, 200, within=10)
    ids = {orjson.loads(r.value)["id"] for r in ingest.published(100)}
    assert {e["id"] for e in before + after} <= ids
