"""`GET /v1/licensees/{id}/exposure/{YYYY-MM}`: a month's usage at list price against what was billed."""

from __future__ import annotations

from typing import Any

import psycopg
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from services.core.month import Month
from services.core.tokens import Principal
from services.ledger.adapters.http.api import LedgerApi, Refusal, query, respond
from services.ledger.adapters.postgres import exposure_store
from services.ledger.domain import params
from services.ledger.domain.catalogue import Catalogue

EXPOSURE_COLUMNS = ("licensee_id", "month", "calls", "records", "tier_id", "list_minor", "billed_source",
                    "billed_minor", "difference_minor", "currency", "status")  # fmt: skip


class ExposureRoutes:
    """The exposure route, priced on one catalogue through a LedgerApi's connections."""

    def __init__(self, api: LedgerApi, catalogue: Catalogue) -> None:
        self.api, self.catalogue = api, catalogue

    async def exposure(self, request: Request, _: Principal) -> Response:
        """`GET /v1/licensees/{id}/exposure/{YYYY-MM}`: 404 for a licensee the ledger knows nothing of."""
        licensee = params.licensee(request.path_params["licensee_id"])
        month = params.month(request.path_params["month"])
        query(request, ())
        found = await run_in_threadpool(self.api.read, self._read, licensee, month)
        if found is None:
            reason = f"the ledger holds no agreement, usage or invoice of {licensee}"
            raise Refusal(404, "licensee_id", reason)
        return respond(request, found, EXPOSURE_COLUMNS, [csv_row(found)])

    def _read(self, conn: psycopg.Connection, licensee: str, month: Month) -> dict[str, Any] | None:
        if not exposure_store.known(conn, licensee):
            return None
        return exposure_store.month_exposure(conn, licensee, month, self.catalogue)


def csv_row(document: dict[str, Any]) -> dict[str, Any]:
    """The exposure document flattened to one CSV row (EXPOSURE_COLUMNS)."""
    tier, billed = document["list_price"] or {}, document["billed"]
    return {**document, **document["usage"], "tier_id": tier.get("tier_id"),
            "billed_source": billed["source"], "billed_minor": billed["amount_minor"]}  # fmt: skip
