"""uvicorn configured with `HttpLimits`: a header read timeout (uvicorn has none), keep-alive and a limit."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import h11
import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.http.h11_impl import H11Protocol

from services.serving.limits import HttpLimits

log = logging.getLogger(__name__)


class HeaderDeadlineProtocol(H11Protocol):
    """h11 that closes a connection whose request headers are not complete in time. uvicorn arms its
    keep-alive timer only after an answer and cancels it on any byte, so a client trickling header bytes
    would otherwise hold its connection for ever."""

    header_timeout: float = 10.0
    _header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Start the clock for the first request's headers."""
        super().connection_made(transport)
        self._arm_header_deadline()

    def on_response_complete(self) -> None:
        """Start the clock for the next request's headers."""
        super().on_response_complete()
        self._arm_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        """Stop the clock."""
        self._cancel_header_deadline()
        super().connection_lost(exc)

    def _arm_header_deadline(self) -> None:
        self._cancel_header_deadline()
        if not self.transport.is_closing():
            self._header_deadline = self.loop.call_later(self.header_timeout, self._header_deadline_passed)

    def _cancel_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _header_deadline_passed(self) -> None:
        # IDLE: h11 has not seen complete headers of a new request (a body in flight is the guard's to time).
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            client = f"{self.client[0]}:{self.client[1]}" if self.client else "?"
            log.info(
                "%s: request headers not complete within %gs; connection closed", client, self.header_timeout
            )
            self.transport.close()


def protocol_for(limits: HttpLimits) -> type[H11Protocol]:
    """The h11 protocol class with `limits`' header timeout."""
    return type(
        "HeaderDeadlineProtocol", (HeaderDeadlineProtocol,), {"header_timeout": limits.header_timeout_seconds}
    )


def uvicorn_config(app: ASGIApp, host: str, port: int, limits: HttpLimits, **options: Any) -> uvicorn.Config:
    """A uvicorn config serving `app` with every limit of `limits`; `options` are passed on."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=protocol_for(limits),
        limit_concurrency=limits.max_connections,
        timeout_keep_alive=limits.keep_alive_seconds,
        access_log=False,
        log_config=None,
        **options,
    )
