"""The slow-client guard (pure ASGI): a body deadline answered with 408, a mid-body disconnect logged as one
line, everything else passed on; and the HTTP limits read from the environment."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import orjson
import pytest
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from services.core.errors import SettingsError
from services.serving.guard import SlowClientGuard
from services.serving.limits import HttpLimits

SCOPE: dict[str, Any] = {"type": "http", "method": "POST", "path": "/v1/x", "client": ("10.0.0.1", 5555),
                         "headers": [], "query_string": b""}  # fmt: skip


async def reading_app(scope: Any, receive: Any, send: Any) -> None:
    """An app that reads the whole body the Starlette way, then answers with its length."""
    body = await Request(scope, receive).body()
    await Response(str(len(body)).encode())(scope, receive, send)


def run(messages: list[dict[str, Any]], pause: float = 0.0, timeout: float = 0.2,
        app: Callable[..., Awaitable[None]] = reading_app) -> list[dict[str, Any]]:  # fmt: skip
    """Feed `messages` to the guarded app (waiting `pause` before the last); return what it sent."""
    sent: list[dict[str, Any]] = []

    async def main() -> None:
        queue = list(messages)

        async def receive() -> dict[str, Any]:
            if len(queue) == 1:
                await anyio.sleep(pause)
            if not queue:
                await anyio.sleep_forever()
            return queue.pop(0)

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await SlowClientGuard(app, timeout)(SCOPE, receive, send)

    anyio.run(main)
    return sent


def chunk(data: bytes, more: bool) -> dict[str, Any]:
    return {"type": "http.request", "body": data, "more_body": more}


def test_a_body_that_arrives_in_time_reaches_the_app() -> None:
    sent = run([chunk(b"ab", True), chunk(b"cd", False)], pause=0.05)
    assert sent[0]["status"] == 200 and sent[1]["body"] == b"4"


def test_a_body_not_complete_by_the_deadline_is_answered_408_and_the_connection_closed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, "services.serving.guard"):
        sent = run([chunk(b"ab", True), chunk(b"cd", False)], pause=1.0, timeout=0.2)
    assert sent[0]["status"] == 408
    assert (b"connection", b"close") in sent[0]["headers"]
    assert orjson.loads(sent[1]["body"])["errors"][0]["field"] == "(body)"
    assert [r.levelname for r in caplog.records] == ["WARNING"]


def test_a_client_that_leaves_mid_body_is_one_info_line_and_no_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO):
        sent = run([chunk(b"ab", True), {"type": "http.disconnect"}])
    assert sent == []
    assert [(r.levelname, r.exc_info) for r in caplog.records] == [("INFO", None)]
    assert "ClientDisconnect" in caplog.records[0].getMessage()


def test_a_disconnect_raised_without_the_client_leaving_is_not_swallowed() -> None:
    async def liar(scope: Any, receive: Any, send: Any) -> None:
        raise ClientDisconnect()

    with pytest.raises(ClientDisconnect):
        run([chunk(b"", False)], app=liar)


def test_an_app_error_after_a_complete_body_still_propagates() -> None:
    async def broken(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        raise RuntimeError("bug")

    with pytest.raises(RuntimeError, match="bug"):
        run([chunk(b"x", False)], app=broken)


def test_a_slow_app_after_the_body_is_not_cut_off() -> None:
    async def slow(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await anyio.sleep(0.4)  # longer than the body timeout: only the body read is timed
        await Response(b"done")(scope, receive, send)

    assert run([chunk(b"x", False)], app=slow, timeout=0.2)[0]["status"] == 200


@pytest.mark.parametrize(("environ", "expected"), [
    ({}, HttpLimits()),
    ({"TOLLGATE_LEDGER_HEADER_TIMEOUT_SECONDS": "2.5", "TOLLGATE_LEDGER_BODY_TIMEOUT_SECONDS": "4",
      "TOLLGATE_LEDGER_MAX_CONNECTIONS": "50", "TOLLGATE_LEDGER_KEEP_ALIVE_SECONDS": "9"},
     HttpLimits(2.5, 4.0, 50, 9)),
    ({"TOLLGATE_INGEST_MAX_CONNECTIONS": "7"}, HttpLimits()),  # another service's variable
])  # fmt: skip
def test_http_limits_come_from_the_services_own_variables(
    environ: dict[str, str], expected: HttpLimits
) -> None:
    assert HttpLimits.from_env(environ, "ledger") == expected


@pytest.mark.parametrize(("name", "value"), [
    ("TOLLGATE_INGEST_MAX_CONNECTIONS", "0"), ("TOLLGATE_INGEST_MAX_CONNECTIONS", "\uff15\uff10"),
    ("TOLLGATE_INGEST_HEADER_TIMEOUT_SECONDS", "0"), ("TOLLGATE_INGEST_BODY_TIMEOUT_SECONDS", "soon"),
])  # fmt: skip
def test_a_bad_http_limit_is_refused_naming_its_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        HttpLimits.from_env({name: value}, "ingest")
