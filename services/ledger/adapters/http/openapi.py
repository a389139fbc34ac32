"""The finance/audit API's OpenAPI document, served unauthenticated at `/openapi.json`."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

_ID = "^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,127}$"
_CSV_OR_JSON = {
    "application/json": {"schema": {"type": "object"}},
    "text/csv": {"schema": {"type": "string"}},
}


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Errors"}}},
    }


def _param(name: str, where: str, schema: dict[str, Any], required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": where, "required": required, "schema": schema}


_LICENSEE = _param("licensee_id", "path", {"type": "string", "pattern": _ID}, required=True)
_MONTH = _param("month", "path", {"type": "string", "pattern": r"^\d{4}-(0[1-9]|1[0-2])$"}, required=True)
_INSTANT = {"type": "string", "description": "YYYY-MM-DD, YYYY-MM or RFC 3339 with offset"}
_RANGE = [_param("from", "query", _INSTANT), _param("to", "query", _INSTANT)]
_GROUP_BY = {"type": "string", "pattern": "^(app|org|org_type)(,(app|org|org_type))*$",
             "description": "comma-separated subset of app, org, org_type"}  # fmt: skip
_REQUIRED_RANGE = [_param(name, "query", _INSTANT, required=True) for name in ("from", "to")]
_LIMIT = _param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 10_000})
_ANSWERS = {
    "400": _error("a parameter is invalid; `field` names it"),
    "401": _error("missing, unknown or revoked bearer token"),
    "403": _error("the token's role may not do this"),
    "503": _error("PostgreSQL is unavailable; retry later"),
}


def _operation(summary: str, parameters: list[dict[str, Any]], ok: str, **extra: Any) -> dict[str, Any]:
    responses: dict[str, Any] = {ok: {"description": "the document", "content": _CSV_OR_JSON}, **_ANSWERS}
    responses.update(extra.pop("responses", {}))
    return {"summary": summary, "security": [{"bearer": []}], "parameters": parameters,
            "responses": responses, **extra}  # fmt: skip


def openapi_document() -> dict[str, Any]:
    """The document: every finance/audit route, its parameters and answers."""
    base = "/v1/licensees/{licensee_id}"
    adjustment = {
        "type": "object",
        "required": ["amount_minor", "reason", "reference"],
        "additionalProperties": False,
        "properties": {
            "amount_minor": {"type": "integer", "not": {"const": 0}},
            "reason": {"type": "string", "minLength": 1, "maxLength": 500},
            "reference": {"type": "string", "minLength": 1, "maxLength": 200},
            "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
        },
    }
    invoice_answers = {
        "404": _error("no invoice issued yet"),
        "409": _error("not due, or nothing to invoice"),
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "Tollgate finance/audit", "version": "1.0.0"},
        "paths": {
            base + "/ledger": {"get": _operation(
                "ledger entries", [_LICENSEE, *_RANGE, _LIMIT], "200")},
            base + "/ledger/verify": {"get": _operation(
                "the licensee's hash chains recomputed; intact, each head, the first row that breaks",
                [_LICENSEE], "200")},
            base + "/usage-report": {"get": _operation("the auditor's evidence report",
                                                       [_LICENSEE, *_RANGE], "200")},
            base + "/invoices/{month}": {
                "get": _operation("an issued invoice", [_LICENSEE, _MONTH], "200",
                                  responses={"404": invoice_answers["404"]}),
                "post": _operation("issue a due invoice (finance)", [_LICENSEE, _MONTH], "201",
                                   responses=invoice_answers),
            },
            base + "/exposure/{month}": {"get": _operation(
                "unbilled exposure: the month's usage on the cheapest published tier that covers it (tier, "
                "included volume, overage), what the agreement billed (invoice, or priced usage before the "
                "invoice), and the difference", [_LICENSEE, _MONTH], "200",
                responses={"404": _error("no agreement, usage or invoice of the licensee is known")})},
            base + "/adjustments": {"post": _operation(
                "post an adjustment (finance)",
                [_LICENSEE, _param("Idempotency-Key", "header", {"type": "string", "maxLength": 200})],
                "201",
                requestBody={"required": True,
                             "content": {"application/json": {"schema": adjustment}}})},
            base + "/audit-report": {"get": _operation(
                "the audit evidence report as a self-contained HTML document (JSON with Accept: "
                "application/json, PDF with Accept: application/pdf)", [_LICENSEE, *_REQUIRED_RANGE], "200",
                responses={"200": {"description": "the document", "content": {
                    "text/html": {"schema": {"type": "string"}},
                    "application/json": {"schema": {"type": "object"}},
                    "application/pdf": {"schema": {"type": "string", "format": "binary"}}}},
                    "503": _error("PostgreSQL is unavailable, or no PDF can be printed now")})},
            base + "/alerts": {"get": _operation(
                "alerts the processor raised whose window overlaps [from, to), with their evidence",
                [_LICENSEE, *_RANGE, _LIMIT], "200")},
            "/v1/usage": {"get": _operation(
                "usage per window and dimension, by event time (finance, auditor)",
                [_param("licensee", "query", {"type": "string", "pattern": _ID}),
                 *_REQUIRED_RANGE,
                 _param("window", "query", {"enum": ["hour", "day", "month"]}),
                 _param("group_by", "query", _GROUP_BY), _LIMIT], "200")},
            "/healthz": {"get": {"security": [], "responses": {"200": {"description": "alive"}}}},
            "/readyz": {"get": {"security": [], "responses": {"200": {"description": "ready"},
                                                              "503": {"description": "no database"}}}},
        },
        "components": {
            "schemas": {"Errors": {
                "type": "object", "required": ["errors"],
                "properties": {"errors": {"type": "array", "items": {
                    "type": "object", "required": ["field", "reason"],
                    "properties": {"field": {"type": "string"}, "reason": {"type": "string"}}}}}}},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }  # fmt: skip


_SPEC = orjson.dumps(openapi_document())


async def endpoint(_: Request) -> Response:
    """`GET /openapi.json`."""
    return Response(_SPEC, media_type="application/json")
