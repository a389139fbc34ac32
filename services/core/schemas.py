"""JSON Schemas of every message, compiled once; fast path for valid input, full detail for invalid.

Integers are strict in both validators: JSON Schema counts 1.0 (and 1e2, which JSON parsers read as 100.0)
as an integer, and fastjsonschema and jsonschema both follow it. Tollgate does not: a float in an integer
field is refused, so `records: 1e2` is never published as `100.0`. fastjsonschema has no hook for types,
so a document holding any float is judged by the (strict) detailed validator instead.
"""

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


def _strict_integer(_: object, instance: object) -> bool:
    return isinstance(instance, int) and not isinstance(instance, bool)


@functools.cache
def _detailed(event_type: str) -> jsonschema.protocols.Validator:
    schema = load_schema(event_type)
    base = jsonschema.validators.validator_for(schema)
    checker = base.TYPE_CHECKER.redefine("integer", _strict_integer)
    validator_cls = jsonschema.validators.extend(base, type_checker=checker)
    return validator_cls(schema, format_checker=base.FORMAT_CHECKER)


def json_children(document: Any) -> Any:
    """The values of a JSON object or the items of an array; nothing for a scalar."""
    if isinstance(document, dict):
        return document.values()
    return document if isinstance(document, list) else ()


def holds_float(document: Any) -> bool:
    """Whether any value in the JSON `document` is a float (the fast validator would take 1.0 as integer)."""
    if isinstance(document, float):
        return True
    # A plain loop, like ingest's depth check: this runs for every event.
    for child in json_children(document):  # noqa: SIM110
        if holds_float(child):
            return True
    return False


def _field(path: Any) -> str:
    return ".".join(str(p) for p in path) or "(event)"


def problems(event_type: str, document: Any) -> list[dict[str, str]]:
    """Every schema violation of `document` as `{field, reason}`; empty when it is valid."""
    try:
        _fast(event_type)(document)
    except fastjsonschema.JsonSchemaException:
        pass
    else:
        if not holds_float(document):
            return []
        return _detail(event_type, document)
    return _detail(event_type, document) or [{"field": "(event)", "reason": "does not match the schema"}]


def _detail(event_type: str, document: Any) -> list[dict[str, str]]:
    """The detailed (strict-integer) validator's findings, each naming its field."""
    found = []
    errors = sorted(_detailed(event_type).iter_errors(document), key=lambda e: list(map(str, e.path)))
    for error in errors:
        path = list(error.path)
        if error.validator == "required" and isinstance(error.instance, Mapping):
            required: list[str] = list(error.validator_value)  # type: ignore[arg-type]
            missing = [k for k in required if k not in error.instance]
            path = [*path, missing[0]] if missing else path
        found.append({"field": _field(path), "reason": _reason(error)})
    return found


def _reason(error: jsonschema.ValidationError) -> str:
    message = error.message
    # Echoing a huge offending value back would amplify hostile input.
    return message if len(message) <= 200 else message[:197] + "..."


def validate(event_type: str, document: Any) -> None:
    """Raise `ValidationFailed` naming every bad field of `document`."""
    found = problems(event_type, document)
    if found:
        raise ValidationFailed(found)
