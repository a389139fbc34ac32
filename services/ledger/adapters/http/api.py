"""The finance/audit HTTP API (Starlette).

Roles (bearer tokens from `services.core.tokens`):
- `finance` and `auditor` may read: the ledger, invoices and the usage report (JSON, or CSV for
  `Accept: text/csv`).
- only `finance` may write: issue a due invoice (`POST .../invoices/{YYYY-MM}`) and post adjustments.
- `GET .../invoices/{YYYY-MM}` never issues: it answers 404 until the invoice exists (the periodic invoicer,
  or finance's POST, issues it once the month is closed plus the grace period).
Answers: 400 names the bad parameter (`{"errors": [{"field", "reason"}]}`), 401 without a valid token,
403 for a role that may not, 404, 408 (body too slow), 409 (not due yet, nothing to invoice), 422 (an
Idempotency-Key reused for a different adjustment), 503 while PostgreSQL is unreachable.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import orjson
import psycopg
from psycopg_pool import PoolTimeout
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.core.clock import Clock
from services.core.tokens import Principal, TokenStore
from services.ledger.adapters.http import openapi, render
from services.ledger.adapters.postgres import group_store, repository
from services.ledger.adapters.postgres.db import Connect
from services.ledger.adapters.postgres.invoices import Invoicer
from services.ledger.domain import group_report, params
from services.ledger.domain.catalogue import Catalogue, load_catalogue
from services.ledger.domain.invoice_math import due_at
from services.ledger.errors import BadParameter, IdempotencyConflict, InvoiceNotDue, NothingToInvoice
from services.ledger.metrics import LedgerMetrics
from services.ledger.settings import LedgerSettings
from services.serving.guard import guard_middleware

log = logging.getLogger(__name__)

READERS = frozenset({"finance", "auditor"})
WRITERS = frozenset({"finance"})
MAX_BODY = 65_536
Handler = Callable[[Request, Principal], Awaitable[Response]]


class Refusal(Exception):
    """An answer other than success: status, the field at fault and why."""

    def __init__(self, status: int, field: str, reason: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(reason)
        self.status, self.field, self.reason, self.headers = status, field, reason, headers or {}


def errors(status: int, field: str, reason: str, headers: dict[str, str] | None = None) -> Response:
    """The JSON error body every refusal uses."""
    body = render.to_json({"errors": [{"field": field, "reason": reason}]})
    return Response(body, status, headers=headers, media_type="application/json")


def respond(
    request: Request, document: Any, columns: tuple[str, ...], rows: list[dict[str, Any]], status: int = 200
) -> Response:
    """JSON, or CSV of `rows` when the client accepts text/csv."""
    if params.wants_csv(request.headers.get("accept", "")):
        return Response(render.to_csv(columns, rows), status, media_type="text/csv; charset=utf-8")
    return Response(render.to_json(document), status, media_type="application/json")


def authenticate(request: Request, tokens: TokenStore, roles: frozenset[str]) -> Principal:
    """The caller's principal: 401 without a valid bearer token, 403 when its role may not do this."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    challenge = {"WWW-Authenticate": 'Bearer realm="tollgate-ledger"'}
    if scheme.lower() != "bearer" or not token.strip():
        raise Refusal(401, "Authorization", "a bearer token is required", challenge)
    principal = tokens.verify(token.strip())
    if principal is None:
        raise Refusal(401, "Authorization", "the bearer token is unknown or revoked", challenge)
    if principal.role not in roles:
        raise Refusal(403, "Authorization", f"role {principal.role!r} may not do this")
    return principal


def query(request: Request, allowed: tuple[str, ...]) -> dict[str, str]:
    """The query parameters, refusing unknown or repeated ones so a typo is never silently ignored."""
    items = request.query_params.multi_items()
    for name, _ in items:
        if name not in allowed:
            raise BadParameter(name, f"is not a known parameter (known: {', '.join(allowed)})")
    if len({name for name, _ in items}) != len(items):
        raise BadParameter(items[0][0], "must be given once")
    return dict(items)


async def bounded_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it passes `limit` bytes (an adjustment is a few hundred)."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Refusal(413, "body", f"must be at most {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


class LedgerApi:
    """Route handlers bound to a database, token store and clock."""

    def __init__(
        self, settings: LedgerSettings, connect: Connect, tokens: TokenStore, clock: Clock, invoicer: Invoicer
    ) -> None:
        self.settings, self.connect, self.tokens, self.clock, self.invoicer = (
            settings,
            connect,
            tokens,
            clock,
            invoicer,
        )

    def guard(self, roles: frozenset[str], handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        """Authenticate, then map every expected failure to its answer."""

        async def endpoint(request: Request) -> Response:
            try:
                return await handler(request, authenticate(request, self.tokens, roles))
            except Refusal as exc:
                return errors(exc.status, exc.field, exc.reason, exc.headers)
            except BadParameter as exc:
                return errors(400, exc.field, exc.reason)
            except (InvoiceNotDue, NothingToInvoice) as exc:
                return errors(409, "month", str(exc))
            except IdempotencyConflict as exc:
                # As payment APIs do: a reused key with another body is the client's bug, never a silent drop.
                return errors(422, "Idempotency-Key", f"{exc}; use a new key for a new adjustment")
            except (psycopg.OperationalError, PoolTimeout) as exc:
                log.warning("database unavailable: %s", exc)
                return errors(503, "database", "PostgreSQL is unavailable; retry later", {"Retry-After": "5"})

        return endpoint

    def read(self, fn: Callable[..., Any], *args: Any) -> Any:
        """`fn(conn, *args)` on a pooled connection (call it in a worker thread)."""
        with self.connect() as conn:
            return fn(conn, *args)

    async def ledger(self, request: Request, _: Principal) -> Response:
        """`GET /v1/licensees/{id}/ledger?from=&to=&limit=`."""
        licensee = params.licensee(request.path_params["licensee_id"])
        found = query(request, ("from", "to", "limit"))
        start, end = params.time_range(found)
        result = await run_in_threadpool(
            self.read, repository.ledger_entries, licensee, *(start, end), params.limit(found)
        )
        return respond(request, result, render.LEDGER_COLUMNS, result["entries"])

    async def invoice(self, request: Request, _: Principal) -> Response:
        """`GET /v1/licensees/{id}/invoices/{YYYY-MM}`: 404 until issued."""
        licensee = params.licensee(request.path_params["licensee_id"])
        month = params.month(request.path_params["month"])
        query(request, ())
        found = await run_in_threadpool(self.read, repository.invoice, licensee, month)
        if found is None:
            due = due_at(month, timedelta(hours=self.settings.invoice_grace_hours))
            raise Refusal(
                404, "month", f"no invoice issued for {licensee} and {month} (due from {due.isoformat()})"
            )
        return respond(request, found, render.INVOICE_COLUMNS, render.invoice_rows(found))

    async def issue(self, request: Request, _: Principal) -> Response:
        """`POST /v1/licensees/{id}/invoices/{YYYY-MM}`: 201 issued now, 200 already issued."""
        licensee = params.licensee(request.path_params["licensee_id"])
        month = params.month(request.path_params["month"])
        query(request, ())
        issued: tuple[str, bool] = await run_in_threadpool(self.invoicer.issue, licensee, month)
        created = issued[1]
        found = await run_in_threadpool(self.read, repository.invoice, licensee, month)
        if found is None:  # cannot happen: issue() committed it
            raise Refusal(404, "month", f"invoice {issued[0]} vanished")
        return respond(
            request, found, render.INVOICE_COLUMNS, render.invoice_rows(found), 201 if created else 200
        )

    async def usage_report(self, request: Request, _: Principal) -> Response:
        """`GET /v1/licensees/{id}/usage-report?from=&to=`."""
        licensee = params.licensee(request.path_params["licensee_id"])
        start, end = params.time_range(query(request, ("from", "to")))
        found = await run_in_threadpool(self.read, group_store.report_with_group, licensee, start, end)
        rows = render.report_rows(found) + group_report.csv_rows(found["group"])
        return respond(request, found, (*render.REPORT_COLUMNS, *group_report.GROUP_COLUMNS), rows)

    async def adjust(self, request: Request, _: Principal) -> Response:
        """`POST /v1/licensees/{id}/adjustments`: 201 posted, 200 when the Idempotency-Key was seen."""
        licensee = params.licensee(request.path_params["licensee_id"])
        query(request, ())
        key = params.idempotency_key(request.headers.get("idempotency-key"))
        try:
            body = orjson.loads(await bounded_body(request, MAX_BODY))
        except orjson.JSONDecodeError as exc:
            raise BadParameter("body", "must be a JSON object") from exc
        adjustment = params.adjustment(body)

        def post(conn: psycopg.Connection) -> tuple[dict[str, Any], bool]:
            with conn.transaction():
                return repository.post_adjustment(conn, licensee, adjustment, key, self.clock.now())

        entry, created = await run_in_threadpool(self.read, post)
        return respond(request, entry, render.LEDGER_COLUMNS, [entry], 201 if created else 200)

    async def healthz(self, _: Request) -> Response:
        """Alive."""
        return Response(b'{"status":"ok"}', media_type="application/json")

    async def readyz(self, _: Request) -> Response:
        """Ready when PostgreSQL answers."""
        try:
            await run_in_threadpool(self.read, lambda conn: conn.execute("SELECT 1").fetchone())
        except (psycopg.Error, PoolTimeout) as exc:
            return errors(503, "database", f"PostgreSQL is unavailable: {type(exc).__name__}")
        return Response(b'{"status":"ready"}', media_type="application/json")


def create_app(
    settings: LedgerSettings,
    connect: Connect,
    tokens: TokenStore,
    clock: Clock,
    metrics: LedgerMetrics | None = None,
    invoicer: Invoicer | None = None,
    catalogue: Catalogue | None = None,
) -> Starlette:
    """The ledger's HTTP app; the price catalogue is read from the settings' path unless given."""
    from services.ledger.adapters.http.api_exposure import (
        ExposureRoutes,  # they build on this module's helpers
    )
    from services.ledger.adapters.http.api_reports import ReportRoutes

    invoicer = invoicer or Invoicer(connect, clock, timedelta(hours=settings.invoice_grace_hours), metrics)
    api = LedgerApi(settings, connect, tokens, clock, invoicer)
    catalogue = catalogue or load_catalogue(settings.price_catalogue)
    reports, exposure = ReportRoutes(api, catalogue), ExposureRoutes(api, catalogue)
    base = "/v1/licensees/{licensee_id:path}"
    routes = [
        Route("/healthz", api.healthz),
        Route("/readyz", api.readyz),
        Route("/openapi.json", openapi.endpoint),
        Route(base + "/ledger/verify", api.guard(READERS, reports.verify)),
        Route(base + "/ledger", api.guard(READERS, api.ledger)),
        Route(base + "/usage-report", api.guard(READERS, api.usage_report)),
        Route(base + "/audit-report", api.guard(READERS, reports.audit_report)),
        Route(base + "/alerts", api.guard(READERS, reports.alerts)),
        Route(base + "/exposure/{month}", api.guard(READERS, exposure.exposure)),
        Route("/v1/usage", api.guard(READERS, reports.usage)),
        Route(base + "/adjustments", api.guard(WRITERS, api.adjust), methods=["POST"]),
        Route(base + "/invoices/{month}", api.guard(READERS, api.invoice), methods=["GET"]),
        Route(base + "/invoices/{month}", api.guard(WRITERS, api.issue), methods=["POST"]),
    ]
    return Starlette(routes=routes, middleware=[guard_middleware(settings.http.body_timeout_seconds)])
