"""The ingest HTTP app: `POST /v1/events`, `/healthz`, `/readyz`, `/openapi.json`."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import anyio
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.core.clock import Clock, SystemClock
from services.core.tokens import Principal, TokenStore
from services.ingest.errors import PublishFailed, Refused
from services.ingest.metrics import IngestMetrics
from services.ingest.openapi import openapi_document
from services.ingest.publisher import Publisher
from services.ingest.settings import IngestSettings
from services.ingest.validation import BODY, accept, media_kind, problem, to_records
from services.serving.guard import guard_middleware

log = logging.getLogger(__name__)


def json_response(status: int, document: Any, headers: dict[str, str] | None = None) -> Response:
    """A JSON answer serialized with orjson."""
    return Response(
        orjson.dumps(document), status_code=status, headers=headers, media_type="application/json"
    )


def bearer_principal(request: Request, tokens: TokenStore) -> Principal:
    """The principal of the request's bearer token: 401 when absent or wrong, 403 when not an ingest token."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Refused(
            401,
            [problem(None, "Authorization", "a bearer token is required")],
            {"WWW-Authenticate": 'Bearer realm="tollgate-ingest"'},
        )
    principal = tokens.verify(token.strip())
    if principal is None:
        raise Refused(
            401,
            [problem(None, "Authorization", "the bearer token is unknown or revoked")],
            {"WWW-Authenticate": 'Bearer realm="tollgate-ingest", error="invalid_token"'},
        )
    if principal.role != "ingest":
        raise Refused(403, [problem(None, "Authorization", f"role {principal.role!r} may not send events")])
    return principal


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The body, refused with 413 as soon as it exceeds `max_bytes`, whatever Content-Length claims."""
    too_large = Refused(413, [problem(None, BODY, f"body exceeds {max_bytes} bytes")])
    declared = request.headers.get("content-length", "")
    # isdigit() alone takes "²", which int() refuses (a 500): only ASCII digits are a length.
    if declared.isascii() and declared.isdigit() and int(declared) > max_bytes:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


class EventsEndpoint:
    """`POST /v1/events`: authenticate, check, publish, and answer only after Kafka acknowledged."""

    def __init__(
        self,
        settings: IngestSettings,
        publisher: Publisher,
        tokens: TokenStore,
        clock: Clock,
        metrics: IngestMetrics,
    ) -> None:
        self.settings = settings
        self.publisher = publisher
        self.tokens = tokens
        self.clock = clock
        self.metrics = metrics
        self.max_future = timedelta(seconds=settings.max_future_seconds)
        self.max_age = timedelta(seconds=settings.max_event_age_seconds)

    async def handle(self, request: Request) -> Response:
        """Answer one request; every refusal becomes a JSON `errors` list."""
        started = time.perf_counter()
        try:
            response = await self._handle(request)
        except Refused as exc:
            self.metrics.rejected(exc.events)
            response = json_response(exc.status, {"errors": exc.problems}, exc.headers)
        self.metrics.answered(response.status_code, time.perf_counter() - started)
        return response

    async def _handle(self, request: Request) -> Response:
        principal = bearer_principal(request, self.tokens)
        kind = media_kind(request.headers.get("content-type"))
        body = await read_body(request, self.settings.max_bytes)
        now, max_batch = self.clock.now(), self.settings.max_batch
        accepted = accept(kind, body, principal, now, max_batch, self.max_future, self.max_age)
        try:
            await self.publisher.publish(to_records(accepted.events))
        except PublishFailed as exc:
            log.warning("publish of %d events failed: %s", len(accepted.events), exc)
            self.metrics.produce_errors.inc()
            retry = str(self.settings.retry_after_seconds)
            reason = "Kafka did not acknowledge the events; nothing is guaranteed stored, retry later"
            raise Refused(
                503, [problem(None, BODY, reason)], {"Retry-After": retry}, events=accepted.received
            ) from exc
        self.metrics.accepted(accepted.received, len(accepted.events), accepted.duplicates)
        return json_response(202, {"accepted": len(accepted.events), "duplicates": accepted.duplicates})


def create_app(
    settings: IngestSettings,
    publisher: Publisher,
    tokens: TokenStore,
    clock: Clock | None = None,
    metrics: IngestMetrics | None = None,
) -> Starlette:
    """Build the ASGI app; it opens no connection until a request needs one."""
    metrics = metrics or IngestMetrics()
    endpoint = EventsEndpoint(settings, publisher, tokens, clock or SystemClock(), metrics)
    spec = orjson.dumps(openapi_document(settings))

    async def healthz(request: Request) -> Response:
        return json_response(200, {"status": "ok"})

    async def readyz(request: Request) -> Response:
        if await publisher.ready():
            return json_response(200, {"status": "ready"})
        return json_response(
            503, {"status": "kafka unreachable"}, {"Retry-After": str(settings.retry_after_seconds)}
        )

    async def openapi(request: Request) -> Response:
        return Response(spec, media_type="application/json")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        # uvicorn runs this after in-flight requests finished: flush what is buffered, then close.
        await anyio.to_thread.run_sync(publisher.close)

    app = Starlette(
        lifespan=lifespan,
        middleware=[guard_middleware(settings.http.body_timeout_seconds)],
        routes=[
            Route("/v1/events", endpoint.handle, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/openapi.json", openapi, methods=["GET"]),
        ],
    )
    app.state.metrics = metrics
    app.state.publisher = publisher
    return app
