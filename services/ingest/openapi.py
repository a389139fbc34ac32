"""The hand-written OpenAPI 3.1 document of the ingest API."""

from __future__ import annotations

from typing import Any

from services.core.schemas import API_CALL_TYPE, load_schema
from services.ingest.settings import IngestSettings
from services.ingest.validation import BATCH, SINGLE

_ERROR_REF = {"$ref": "#/components/schemas/Errors"}


def _error(description: str, retry_after: bool = False, authenticate: bool = False) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": _ERROR_REF}},
    }
    headers = {}
    if retry_after:
        headers["Retry-After"] = {
            "description": "seconds to wait before retrying",
            "schema": {"type": "integer"},
        }
    if authenticate:
        headers["WWW-Authenticate"] = {"description": "`Bearer`", "schema": {"type": "string"}}
    if headers:
        response["headers"] = headers
    return response


def _components(settings: IngestSettings) -> dict[str, Any]:
    event = {k: v for k, v in load_schema(API_CALL_TYPE).items() if k not in ("$schema", "$id")}
    problem = {
        "type": "object",
        "required": ["index", "field", "reason"],
        "properties": {
            "index": {
                "type": ["integer", "null"],
                "description": "position in the batch; null for the whole body",
            },
            "field": {
                "type": "string",
                "description": "dotted path of the bad field, `(body)` or a header name",
            },
            "reason": {"type": "string"},
        },
    }
    return {
        "schemas": {
            "ApiCallEvent": event,
            "ApiCallBatch": {
                "type": "array",
                "items": {"$ref": "#/components/schemas/ApiCallEvent"},
                "maxItems": settings.max_batch,
            },
            "Accepted": {
                "type": "object",
                "required": ["accepted", "duplicates"],
                "properties": {
                    "accepted": {"type": "integer", "minimum": 0},
                    "duplicates": {"type": "integer", "minimum": 0},
                },
            },
            "Problem": problem,
            "Errors": {
                "type": "object",
                "required": ["errors"],
                "properties": {
                    "errors": {"type": "array", "items": {"$ref": "#/components/schemas/Problem"}}
                },
            },
        },
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
    }


def _post_events(settings: IngestSettings) -> dict[str, Any]:
    return {
        "summary": "Send API-call CloudEvents",
        "description": (
            "Structured-mode CloudEvents 1.0 of type `io.tollgate.api.call.v1`. A batch is all or nothing; "
            "repeats of `source` + `id` inside one request are published once and counted in `duplicates`. "
            "202 means Kafka acknowledged every event with acks=all."
        ),
        "operationId": "postEvents",
        "security": [{"bearer": []}],
        "requestBody": {
            "required": True,
            "content": {
                SINGLE: {"schema": {"$ref": "#/components/schemas/ApiCallEvent"}},
                BATCH: {"schema": {"$ref": "#/components/schemas/ApiCallBatch"}},
            },
        },
        "responses": {
            "202": {
                "description": "every event is stored in Kafka",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Accepted"}}},
            },
            "400": _error("malformed JSON or invalid events; one entry per bad field"),
            "401": _error("missing, unknown or revoked bearer token", authenticate=True),
            "403": _error("the token's role may not send, or it may not send an event's source"),
            "413": _error(f"more than {settings.max_batch} events or {settings.max_bytes} bytes"),
            "415": _error(f"Content-Type is neither {SINGLE} nor {BATCH}"),
            "503": _error("Kafka did not acknowledge in time; retry after the given delay", retry_after=True),
        },
    }


def _probe(description: str) -> dict[str, Any]:
    return {
        "get": {
            "summary": description,
            "security": [],
            "responses": {"200": {"description": "yes"}, "503": {"description": "no"}},
        }
    }


def openapi_document(settings: IngestSettings) -> dict[str, Any]:
    """The OpenAPI document served at `/openapi.json`."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Tollgate ingest",
            "version": "1.0.0",
            "description": "Authenticated CloudEvents over HTTP into Kafka.",
        },
        "paths": {
            "/v1/events": {"post": _post_events(settings)},
            "/healthz": _probe("the process is alive"),
            "/readyz": _probe("Kafka is reachable"),
        },
        "components": _components(settings),
    }
