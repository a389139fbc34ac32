"""Route handlers for usage queries, chain verification and the audit document, beside the core routes."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from services.core.tokens import Principal
from services.ledger import audit_data, audit_html, chain_store, params, render, usage_query
from services.ledger.api import LedgerApi, query, respond
from services.ledger.catalogue import Catalogue

VERIFY_COLUMNS = ("table", "licensee_id", "rows", "head_seq", "head_hash")
HTML_HEADERS = {"Content-Security-Policy": audit_html.CSP, "X-Content-Type-Options": "nosniff"}


class ReportRoutes:
    """`GET /v1/usage` and `GET /v1/licensees/{id}/audit-report`, through a LedgerApi's connections."""

    def __init__(self, api: LedgerApi, catalogue: Catalogue) -> None:
        self.api, self.catalogue = api, catalogue

    async def usage(self, request: Request, _: Principal) -> Response:
        """`GET /v1/usage?licensee=&from=&to=&window=&group_by=&limit=`."""
        checked = usage_query.parse_query(query(request, usage_query.PARAMETERS))
        found = await run_in_threadpool(self.api.read, usage_query.run, checked)
        return respond(request, found, checked.columns, found["rows"])

    async def verify(self, request: Request, _: Principal) -> Response:
        """`GET /v1/licensees/{id}/ledger/verify`: the hash chains recomputed, the first break named."""
        licensee = params.licensee(request.path_params["licensee_id"])
        query(request, ())
        found = await run_in_threadpool(self.api.read, chain_store.verify, licensee)
        return respond(request, found, VERIFY_COLUMNS, found["chains"])

    async def audit_report(self, request: Request, _: Principal) -> Response:
        """`GET /v1/licensees/{id}/audit-report?from=&to=`: HTML (the default), or JSON when asked for."""
        licensee = params.licensee(request.path_params["licensee_id"])
        start, end = params.required_range(query(request, ("from", "to")))
        read = (audit_data.audit_facts, licensee, start, end, self.catalogue)
        facts = await run_in_threadpool(self.api.read, *read)
        if wants_json(request.headers.get("accept", "")):
            return Response(render.to_json(facts), media_type="application/json")
        document = audit_html.render(facts, self.api.clock.now())
        return Response(document, media_type="text/html; charset=utf-8", headers=HTML_HEADERS)


def wants_json(accept: str) -> bool:
    """JSON only when asked for and HTML is not: browsers and `Accept: text/html` get the document."""
    types = {part.split(";")[0].strip().lower() for part in accept.split(",")}
    return "application/json" in types and "text/html" not in types
