"""Route handlers for usage queries and the audit evidence document, beside the core ledger routes."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from services.core.tokens import Principal
from services.ledger import usage_query
from services.ledger.api import LedgerApi, query, respond


class ReportRoutes:
    """`GET /v1/usage` (and the audit report), reading through a LedgerApi's connections."""

    def __init__(self, api: LedgerApi) -> None:
        self.api = api

    async def usage(self, request: Request, _: Principal) -> Response:
        """`GET /v1/usage?licensee=&from=&to=&window=&group_by=&limit=`."""
        checked = usage_query.parse_query(query(request, usage_query.PARAMETERS))
        found = await run_in_threadpool(self.api.read, usage_query.run, checked)
        return respond(request, found, checked.columns, found["rows"])
