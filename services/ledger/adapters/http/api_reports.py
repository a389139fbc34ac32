"""Route handlers for usage queries, chain verification, alerts and the audit document (HTML, JSON, PDF)."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from services.core.tokens import Principal
from services.ledger.adapters import pdf
from services.ledger.adapters.http import render
from services.ledger.adapters.http.api import LedgerApi, Refusal, query, respond
from services.ledger.adapters.postgres import alerts_store, audit_data, chain_store, usage_query
from services.ledger.domain import audit_html, params
from services.ledger.domain.catalogue import Catalogue

VERIFY_COLUMNS = ("table", "licensee_id", "rows", "head_seq", "head_hash")
HTML_HEADERS = {"Content-Security-Policy": audit_html.CSP, "X-Content-Type-Options": "nosniff"}


class ReportRoutes:
    """`GET /v1/usage`, `.../ledger/verify`, `.../alerts` and `.../audit-report`, through a LedgerApi."""

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

    async def alerts(self, request: Request, _: Principal) -> Response:
        """`GET /v1/licensees/{id}/alerts?from=&to=&limit=`: the alerts whose window overlaps the period."""
        licensee = params.licensee(request.path_params["licensee_id"])
        found = query(request, ("from", "to", "limit"))
        start, end = params.time_range(found)
        read = (alerts_store.alerts, licensee, start, end, params.limit(found))
        result = await run_in_threadpool(self.api.read, *read)
        return respond(request, result, alerts_store.ALERT_CSV_COLUMNS, alerts_store.csv_rows(result))

    async def audit_report(self, request: Request, _: Principal) -> Response:
        """`GET /v1/licensees/{id}/audit-report?from=&to=`: HTML (the default), JSON or PDF when asked for."""
        licensee = params.licensee(request.path_params["licensee_id"])
        start, end = params.required_range(query(request, ("from", "to")))
        read = (audit_data.audit_facts, licensee, start, end, self.catalogue)
        facts = await run_in_threadpool(self.api.read, *read)
        if wants_json(request.headers.get("accept", "")):
            return Response(render.to_json(facts), media_type="application/json")
        document = audit_html.render(facts, self.api.clock.now())
        if wants_pdf(request.headers.get("accept", "")):
            return await self._pdf(document, f"audit-{licensee}-{start:%Y%m%d}-{end:%Y%m%d}.pdf")
        return Response(document, media_type="text/html; charset=utf-8", headers=HTML_HEADERS)

    async def _pdf(self, document: str, filename: str) -> Response:
        settings = self.api.settings
        try:
            printed = await run_in_threadpool(
                pdf.html_to_pdf, document, settings.chromium, settings.pdf_timeout_seconds
            )
        except pdf.PdfUnavailable as exc:
            reason = f"application/pdf is unavailable: {exc}"
            raise Refusal(503, "Accept", reason, {"Retry-After": "30"}) from exc
        safe = "".join(c if c.isalnum() or c in "-._" else "_" for c in filename)
        headers = {"Content-Disposition": f'inline; filename="{safe}"', "X-Content-Type-Options": "nosniff"}
        return Response(printed, media_type="application/pdf", headers=headers)


def wants_pdf(accept: str) -> bool:
    """PDF only when asked for and HTML is not (a browser's Accept lists text/html)."""
    types = {part.split(";")[0].strip().lower() for part in accept.split(",")}
    return "application/pdf" in types and "text/html" not in types


def wants_json(accept: str) -> bool:
    """JSON only when asked for and HTML is not: browsers and `Accept: text/html` get the document."""
    types = {part.split(";")[0].strip().lower() for part in accept.split(",")}
    return "application/json" in types and "text/html" not in types
