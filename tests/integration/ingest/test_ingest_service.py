"""`tollgate serve ingest` as a real process: settings from the environment, metrics port, clean SIGTERM."""

from __future__ import annotations

import concurrent.futures
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from services.core.tokens import FileTokenStore
from services.demo.launcher import wait_http_ok
from services.stack.ports import free_port

pytestmark = pytest.mark.integration


@pytest.fixture
def serve_ingest(tmp_path: Path) -> Iterator[Callable[..., tuple[subprocess.Popen[bytes], dict[str, str]]]]:
    """Factory: start `tollgate serve ingest` with extra TOLLGATE_* variables; stopped after the test."""
    started: list[subprocess.Popen[bytes]] = []

    def start(**env: str) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
        full = {
            **os.environ,
            "TOLLGATE_INGEST_PORT": str(free_port()),
            "TOLLGATE_INGEST_METRICS_PORT": str(free_port()),
            # The events are in a fixed October 2026 (tests/ingest_support.py); the process runs on the
            # real clock, so its age bound must reach back to them however much time has passed.
            "TOLLGATE_INGEST_MAX_EVENT_AGE_SECONDS": str(100 * 365 * 86400),
            **env,
        }
        log = (tmp_path / f"ingest-{len(started)}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "serve", "ingest"],
            env=full,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        started.append(process)
        return process, full

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


@dataclass
class ServedIngest:
    """A ready `tollgate serve ingest` process publishing to a topic of its own."""

    process: subprocess.Popen[bytes]
    env: dict[str, str]
    store: FileTokenStore
    token: str
    topic: str
    read_topic: Callable[..., list[Any]]

    @property
    def url(self) -> str:
        """Base URL of the HTTP API."""
        return f"http://127.0.0.1:{self.env['TOLLGATE_INGEST_PORT']}"

    @property
    def headers(self) -> dict[str, str]:
        """Headers of a batch POST with the ingest token."""
        return {"Content-Type": "application/cloudevents-batch+json", "Authorization": f"Bearer {self.token}"}

    def published(self, expected: int) -> list[Any]:
        """Every record of the service's topic, waiting until at least `expected` arrived."""
        return self.read_topic(self.env["TOLLGATE_KAFKA_BOOTSTRAP"], self.topic, expected)

    def terminate(self) -> int:
        """SIGTERM the process and return its exit code."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=20)


@pytest.fixture
def served_ingest(
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
    serve_ingest: Callable[..., Any],
    read_topic: Callable[..., list[Any]],
    tmp_path: Path,
) -> ServedIngest:
    """The service started from its environment on a fresh topic, once /readyz says 200."""
    tokens_file = tmp_path / "tokens.json"
    store = FileTokenStore(tokens_file)
    token = store.create("gateway", "ingest")
    topic = new_topic(partitions=3)
    process, env = serve_ingest(
        TOLLGATE_KAFKA_BOOTSTRAP=kafka_bootstrap,
        TOLLGATE_TOKENS_FILE=str(tokens_file),
        TOLLGATE_INGEST_TOPIC=topic,
    )
    served = ServedIngest(process, env, store, token, topic, read_topic)
    wait_http_ok(process, f"{served.url}/readyz", 30, "ingest")
    return served


def test_the_service_runs_from_its_environment_and_stops_cleanly_on_sigterm(
    served_ingest: ServedIngest, api_call: Callable[..., dict[str, Any]]
) -> None:
    url, headers = served_ingest.url, served_ingest.headers
    response = httpx.post(
        f"{url}/v1/events", content=orjson.dumps([api_call(n) for n in range(20)]), headers=headers
    )
    assert (response.status_code, response.json()) == (202, {"accepted": 20, "duplicates": 0})
    assert len(served_ingest.published(20)) == 20

    metrics = httpx.get(f"http://127.0.0.1:{served_ingest.env['TOLLGATE_INGEST_METRICS_PORT']}/metrics").text
    assert 'tollgate_ingest_requests_total{status="202"} 1.0' in metrics
    assert 'tollgate_ingest_events_total{outcome="accepted"} 20.0' in metrics

    # Revocation is read from the file without a restart.
    served_ingest.store.revoke(served_ingest.token.split("_")[1])
    time.sleep(1.2)
    assert httpx.post(f"{url}/v1/events", content=b"[]", headers=headers).status_code == 401

    assert served_ingest.terminate() == 0


def test_a_request_in_flight_at_sigterm_is_answered_and_published_before_the_service_exits_0(
    served_ingest: ServedIngest, api_call: Callable[..., dict[str, Any]]
) -> None:
    body = orjson.dumps([api_call(n, source="in-flight") for n in range(50)])
    first_half_sent, may_finish = threading.Event(), threading.Event()

    def slow_body() -> Iterator[bytes]:
        # The body arrives in two parts, so the request is still being read when SIGTERM comes.
        yield body[: len(body) // 2]
        first_half_sent.set()
        may_finish.wait(timeout=20)
        yield body[len(body) // 2 :]

    url = served_ingest.url
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        answer = pool.submit(
            httpx.post, f"{url}/v1/events", content=slow_body(), headers=served_ingest.headers, timeout=30
        )
        assert first_half_sent.wait(timeout=20)
        time.sleep(0.5)  # the server has the request's headers and waits for the rest of the body
        served_ingest.process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        with pytest.raises(httpx.ConnectError):  # shutting down: it takes no new connection
            httpx.get(f"{url}/healthz", timeout=2)
        may_finish.set()
        response = answer.result(timeout=30)
    assert (response.status_code, response.json()) == (202, {"accepted": 50, "duplicates": 0})
    assert served_ingest.process.wait(timeout=20) == 0
    assert len(served_ingest.published(50)) == 50


def test_the_service_refuses_to_start_without_its_token_file(
    kafka_bootstrap: str, serve_ingest: Callable[..., Any], tmp_path: Path
) -> None:
    process, _ = serve_ingest(
        TOLLGATE_KAFKA_BOOTSTRAP=kafka_bootstrap, TOLLGATE_TOKENS_FILE=str(tmp_path / "missing.json")
    )
    assert process.wait(timeout=30) != 0
