"""ASGI middleware for slow and vanishing clients: a deadline on the request body, and a client that leaves
mid-body logged as one line instead of an error with a traceback."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import anyio
import orjson
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.serving.errors import BodyTimeout

log = logging.getLogger(__name__)


@dataclass
class _Exchange:
    """What the middleware saw of one request."""

    deadline: float
    body_done: bool = False
    disconnected: bool = False
    answered: bool = False


class SlowClientGuard:
    """Answer 408 (and close) when the body is not complete in time; log a mid-body disconnect as INFO."""

    def __init__(self, app: ASGIApp, body_timeout_seconds: float) -> None:
        self.app = app
        self.body_timeout = body_timeout_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app with a timed `receive` and a `send` that notes whether an answer began."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        exchange = _Exchange(anyio.current_time() + self.body_timeout)

        async def timed_receive() -> Message:
            return await _receive_by_deadline(receive, exchange)

        async def noted_send(message: Message) -> None:
            exchange.answered = exchange.answered or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, timed_receive, noted_send)
        except BodyTimeout:
            log.warning(
                "%s: request body not complete within %.0fs; answered 408", _who(scope), self.body_timeout
            )
            if not exchange.answered:
                await _send_408(send, self.body_timeout)
        except Exception as exc:
            # Starlette raises ClientDisconnect (or the app something else) once the client left mid-body:
            # nobody is there to answer, and it is no server error.
            if not exchange.disconnected:
                raise
            log.info(
                "%s: client disconnected before its body was complete (%s)", _who(scope), type(exc).__name__
            )


async def _receive_by_deadline(receive: Receive, exchange: _Exchange) -> Message:
    """The next message; BodyTimeout when the body is still incomplete at the deadline."""
    if exchange.body_done:
        return await receive()  # after the body, receive only waits for a disconnect: no deadline
    try:
        with anyio.fail_after(max(exchange.deadline - anyio.current_time(), 0.0)):
            message = await receive()
    except TimeoutError as exc:
        raise BodyTimeout("request body read timed out") from exc
    if message["type"] == "http.disconnect":
        exchange.disconnected = True
    elif not message.get("more_body", False):
        exchange.body_done = True
    return message


async def _send_408(send: Send, timeout: float) -> None:
    """The JSON error both services use; `Connection: close`, so the rest of a trickled body is not read."""
    reason = f"the request body was not complete within {timeout:g}s"
    body = orjson.dumps({"errors": [{"index": None, "field": "(body)", "reason": reason}]})
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (b"connection", b"close")]  # fmt: skip
    await send({"type": "http.response.start", "status": 408, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _who(scope: Scope) -> str:
    client = scope.get("client") or ("?", 0)
    return f"{client[0]}:{client[1]} {scope.get('method', '')} {scope.get('path', '')}"


def guard_middleware(body_timeout_seconds: float) -> Middleware:
    """The guard as Starlette middleware: inside Starlette's error handler, so a timeout is 408, not 500."""
    return Middleware(SlowClientGuard, body_timeout_seconds=body_timeout_seconds)
