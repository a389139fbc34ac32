"""`tollgate serve ingest` as a real process: settings from the environment, metrics port, clean SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from services.core.tokens import FileTokenStore
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


def _wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, "ingest exited"
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    pytest.fail("ingest never became ready")


def test_the_service_runs_from_its_environment_and_stops_cleanly_on_sigterm(
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
    serve_ingest: Callable[..., Any],
    api_call: Callable[..., dict[str, Any]],
    read_topic: Callable[..., list[Any]],
    tmp_path: Path,
) -> None:
    tokens_file = tmp_path / "tokens.json"
    store = FileTokenStore(tokens_file)
    token = store.create("gateway", "ingest")
    topic = new_topic(partitions=3)
    process, env = serve_ingest(
        TOLLGATE_KAFKA_BOOTSTRAP=kafka_bootstrap,
        TOLLGATE_TOKENS_FILE=str(tokens_file),
        TOLLGATE_INGEST_TOPIC=topic,
    )
    url = f"http://127.0.0.1:{env['TOLLGATE_INGEST_PORT']}"
    _wait_ready(url, process)
    headers = {"Content-Type": "application/cloudevents-batch+json", "Authorization": f"Bearer {token}"}
    response = httpx.post(
        f"{url}/v1/events", content=orjson.dumps([api_call(n) for n in range(20)]), headers=headers
    )
    assert (response.status_code, response.json()) == (202, {"accepted": 20, "duplicates": 0})
    assert len(read_topic(kafka_bootstrap, topic, 20)) == 20

    metrics = httpx.get(f"http://127.0.0.1:{env['TOLLGATE_INGEST_METRICS_PORT']}/metrics").text
    assert 'tollgate_ingest_requests_total{status="202"} 1.0' in metrics
    assert 'tollgate_ingest_events_total{outcome="accepted"} 20.0' in metrics

    # Revocation is read from the file without a restart.
    store.revoke(token.split("_")[1])
    time.sleep(1.2)
    assert httpx.post(f"{url}/v1/events", content=b"[]", headers=headers).status_code == 401

    process.send_signal(signal.SIGTERM)
    process.wait(timeout=20)


def test_the_service_refuses_to_start_without_its_token_file(
    kafka_bootstrap: str, serve_ingest: Callable[..., Any], tmp_path: Path
) -> None:
    process, _ = serve_ingest(
        TOLLGATE_KAFKA_BOOTSTRAP=kafka_bootstrap, TOLLGATE_TOKENS_FILE=str(tmp_path / "missing.json")
    )
    assert process.wait(timeout=30) != 0
