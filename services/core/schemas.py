"""JSON Schemas of every message, compiled once; fast path for valid input, full detail for invalid."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import fastjsonschema
import jsonschema

from services.core.errors import ValidationFailed

SCHEMAS_DIR = Path(__file__).resolve().parents[2] / "schemas"

API_CALL_TYPE = "io.tollgate.api.call.v1"
ALERT_TYPE = "io.tollgate.alert.v1"
BILLABLE_TYPE = "io.tollgate.billable.v1"
AGREEMENT_TYPE = "io.tollgate.agreement.v1"
ALL_TYPES = (API_CALL_TYPE, ALERT_TYPE, BILLABLE_TYPE, AGREEMENT_TYPE)


@functools.cache
def load_schema(event_type: str) -> dict[str, Any]:
    """The JSON Schema document of one CloudEvents type."""
    if event_type not in ALL_TYPES:
        raise KeyError(f"no schema for type {event_type!r}")
    path = SCHEMAS_DIR / f"{event_type}.schema.json"
    with path.open(encoding="utf-8") as handle:
        document: dict[str, Any] = json.load(handle)
    return document


@functools.cache
def _fast(event_type: str) -> Callable[[Any], Any]:
    compiled: Callable[[Any], Any] = fastjsonschema.compile(load_schema(event_type))
    return compiled


@functools.cache
def _detailed(event_type: str) -> jsonschema.protocols.Validator:
    schema = load_schema(event_type)
    validator_cls = jsonschema.validators.validator_for(schema)
    return validator_cls(schema, format_checker=validator_cls.FORMAT_CHECKER)


def _field(path: Any) -> str:
    return ".".join(str(p) for p in path) or "(event)"


def problems(event_type: str, document: Any) -> list[dict[str, str]]:
    """Every schema violation of `document` as `{field, reason}`; empty when it is valid."""
    try:
        _fast(event_type)(document)
    except fastjsonschema.JsonSchemaException:
        pass
    else:
        return []
    found = []
    errors = sorted(_detailed(event_type).iter_errors(document), key=lambda e: list(map(str, e.path)))
    for error in errors:
        path = list(error.path)
        if error.validator == "required" and isinstance(error.instance, Mapping):
            required: list[str] = list(error.validator_value)  # type: ignore[arg-type]
            missing = [k for k in required if k not in error.instance]
            path = [*path, missing[0]] if missing else path
        found.append({"field": _field(path), "reason": _reason(error)})
    return found or [{"field": "(event)", "reason": "does not match the schema"}]


def _reason(error: jsonschema.ValidationError) -> str:
    message = error.message
    # Echoing a huge offending value back would amplify hostile input.
    return message if len(message) <= 200 else message[:197] + "..."


def validate(event_type: str, document: Any) -> None:
    """Raise `ValidationFailed` naming every bad field of `document`."""
    found = problems(event_type, document)
    if found:
        raise ValidationFailed(found)
