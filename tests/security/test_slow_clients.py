"""Slow and vanishing clients against ingest and the ledger as processes with tight limits: trickled headers
are cut off, a trickled body gets 408, a client leaving mid-body is one log line, and connections past the
limit get 503 until the slow ones are dropped. After each, a valid request is answered."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from security_support import Spawned, Targets

from services.core.tokens import FileTokenStore

pytestmark = pytest.mark.integration

HEADER_TIMEOUT, BODY_TIMEOUT, MAX_CONNECTIONS = 1.0, 2.0, 6
ROUTES = {"ingest": ("/v1/events", "application/cloudevents+json", "ingest"),
          "ledger": ("/v1/licensees/omnisoft/adjustments", "application/json", "finance")}  # fmt: skip


class Service:
    """A spawned service, a token of the role its write route needs, and raw-socket helpers."""

    def __init__(self, name: str, spawned: Spawned, token: str) -> None:
        self.name, self.spawned, self.token = name, spawned, token
        self.host, port = spawned.url.removeprefix("http://").split(":")
        self.port = int(port)

    def connect(self) -> socket.socket:
        return socket.create_connection((self.host, self.port), timeout=10)

    def head(self, length: int) -> bytes:
        """The complete request head of a POST to the write route announcing `length` body bytes."""
        path, media, _ = ROUTES[self.name]
        return (f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {self.token}\r\n"
                f"Content-Type: {media}\r\nContent-Length: {length}\r\n\r\n").encode()  # fmt: skip

    def still_serves(self) -> None:
        assert httpx.get(f"{self.spawned.url}/healthz", timeout=10).status_code == 200

    def log(self) -> str:
        return self.spawned.log_path.read_text(errors="replace")


def closed_within(sock: socket.socket, seconds: float) -> float:
    """Seconds until the peer closed `sock` (reading and discarding), failing after `seconds`."""
    started = time.monotonic()
    sock.settimeout(0.2)
    while time.monotonic() - started < seconds:
        try:
            if sock.recv(65536) == b"":
                return time.monotonic() - started
        except TimeoutError:
            continue
        except OSError:
            return time.monotonic() - started
    raise AssertionError(f"the connection was still open after {seconds}s")


@pytest.fixture(params=["ingest", "ledger"])
def service(request: pytest.FixtureRequest, targets: Targets, tmp_path: Path,
            spawn_service: Callable[..., Spawned]) -> Iterator[Service]:  # fmt: skip
    """One service with a 1 s header timeout, a 2 s body timeout and at most 6 connections."""
    name = request.param
    tokens_file = tmp_path / "tokens.json"
    token = FileTokenStore(tokens_file).create("slow", ROUTES[name][2])
    env = {"TOLLGATE_TOKENS_FILE": str(tokens_file), "TOLLGATE_KAFKA_BOOTSTRAP": targets.kafka_bootstrap,
           f"TOLLGATE_{name.upper()}_HEADER_TIMEOUT_SECONDS": str(HEADER_TIMEOUT),
           f"TOLLGATE_{name.upper()}_BODY_TIMEOUT_SECONDS": str(BODY_TIMEOUT),
           f"TOLLGATE_{name.upper()}_MAX_CONNECTIONS": str(MAX_CONNECTIONS)}  # fmt: skip
    if name == "ingest":
        env["TOLLGATE_INGEST_TOPIC"] = targets.ingest_topic
    else:
        env.update({"TOLLGATE_APP_DATABASE_URL": targets.app_url, "TOLLGATE_DATABASE_URL": "",
                    "TOLLGATE_LEDGER_TOPIC": f"security.nothing.{uuid.uuid4().hex[:8]}",
                    "TOLLGATE_LEDGER_CONSUMER_GROUP": f"slow-{uuid.uuid4().hex[:8]}"})  # fmt: skip
    yield Service(name, spawn_service(name, env), token)


def test_a_client_trickling_its_headers_is_cut_off_after_the_header_timeout(service: Service) -> None:
    with service.connect() as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        with pytest.raises(OSError):
            while time.monotonic() - started < 10:
                sock.sendall(b"X-Slow: 1\r\n")  # a byte now and then: uvicorn alone would wait for ever
                time.sleep(0.2)
                sock.settimeout(0.01)
                try:
                    if sock.recv(1) == b"":
                        raise ConnectionResetError("closed by the server")
                except TimeoutError:
                    pass
        assert HEADER_TIMEOUT * 0.8 <= time.monotonic() - started < HEADER_TIMEOUT + 3
    service.still_serves()


def test_an_idle_connection_that_sends_nothing_is_closed(service: Service) -> None:
    with service.connect() as sock:
        assert closed_within(sock, HEADER_TIMEOUT + 3) >= HEADER_TIMEOUT * 0.8
    service.still_serves()


def test_a_client_trickling_its_body_gets_a_408_after_the_body_timeout(service: Service) -> None:
    with service.connect() as sock:
        sock.sendall(service.head(1000))
        started, answer = time.monotonic(), b""
        sock.settimeout(0.05)
        while time.monotonic() - started < 10 and b"\r\n\r\n" not in answer:
            try:
                sock.sendall(b" ")
                answer += sock.recv(65536)
            except TimeoutError:
                time.sleep(0.15)
            except OSError:
                break
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert BODY_TIMEOUT * 0.8 <= time.monotonic() - started < BODY_TIMEOUT + 3
        assert b"connection: close" in answer.lower()
    service.still_serves()


def test_a_client_leaving_mid_body_is_one_log_line_and_no_traceback(service: Service) -> None:
    with service.connect() as sock:
        sock.sendall(service.head(1000) + b'{"partial": ')
        time.sleep(0.3)
    deadline = time.monotonic() + 10
    while "disconnected before its body was complete" not in service.log() and time.monotonic() < deadline:
        time.sleep(0.2)
    log = service.log()
    [line] = [line for line in log.splitlines() if "disconnected before its body was complete" in line]
    assert " INFO services.serving.guard: " in line, line
    assert "Traceback" not in log and "Exception in ASGI application" not in log, log[-2000:]
    service.still_serves()


def test_requests_past_the_connection_limit_get_503_until_slow_clients_are_dropped(service: Service) -> None:
    idle = [service.connect() for _ in range(MAX_CONNECTIONS)]
    try:
        time.sleep(0.2)
        assert httpx.get(f"{service.spawned.url}/healthz", timeout=10).status_code == 503
        for sock in idle:
            closed_within(sock, HEADER_TIMEOUT + 3)  # the header deadline frees them
    finally:
        for sock in idle:
            sock.close()
    service.still_serves()
