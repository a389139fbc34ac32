"""JSON Schemas of every message, compiled once; fast path for valid input, full detail for invalid.

Integers are strict in both validators: JSON Schema counts 1.0 (and 1e2, which JSON parsers read as 100.0)
as an integer, and fastjsonschema and jsonschema both follow it. Tollgate does not: a float in an integer
field is refused, so `records: 1e2` is never published as `100.0`. fastjsonschema has no hook for types,
so a document with a float in an integer field is judged by the (strict) detailed validator instead.
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


def _typed_integer(node: Any) -> bool:
    kind = node.get("type") if isinstance(node, dict) else None
    return kind == "integer" or (isinstance(kind, list) and "integer" in kind)


@functools.cache
def integer_paths(event_type: str) -> tuple[tuple[str, ...], ...] | None:
    """Where the schema's integer fields are (a trailing "*": any member not named in `properties`),
    when they sit only under `properties` and `additionalProperties`; else None."""
    found: list[tuple[str, ...]] = []

    def walk(node: Any, path: tuple[str, ...]) -> bool:
        if not isinstance(node, dict):
            return True
        if _typed_integer(node):
            found.append(path)
        extra = node.get("additionalProperties")
        if _typed_integer(extra):
            found.append((*path, "*"))
        for name, child in (node.get("properties") or {}).items():
            if not walk(child, (*path, name)):
                return False
        # An integer anywhere else (array items, pattern properties, combinators) needs the full walk.
        rest = {k: v for k, v in node.items() if k not in ("properties", "type", "additionalProperties")}
        if isinstance(extra, dict) and not _typed_integer(extra):
            rest["additionalProperties"] = extra
        return '"integer"' not in json.dumps(rest)

    return tuple(found) if walk(load_schema(event_type), ()) else None


def _floats_at(document: Any, path: tuple[str, ...], named: Any) -> bool:
    value = document
    for depth, name in enumerate(path):
        if name == "*":
            known = _properties_at(named, path[:depth])
            return isinstance(value, dict) and any(
                isinstance(v, float) for k, v in value.items() if k not in known
            )
        value = value.get(name) if isinstance(value, dict) else None
    return isinstance(value, float)


def _properties_at(schema: Any, path: tuple[str, ...]) -> Any:
    node = schema
    for name in path:
        node = node["properties"][name]
    return node.get("properties") or {}


def holds_integer_float(event_type: str, document: Any) -> bool:
    """Whether a field the schema types as integer holds a float (the fast validator takes 1.0)."""
    paths = integer_paths(event_type)
    if paths is None:
        return holds_float(document)
    schema = load_schema(event_type)
    return any(_floats_at(document, path, schema) for path in paths)


def _field(path: Any) -> str:
    return ".".join(str(p) for p in path) or "(event)"


def problems(event_type: str, document: Any) -> list[dict[str, str]]:
    """Every schema violation of `document` as `{field, reason}`; empty when it is valid."""
    try:
        _fast(event_type)(document)
    except fastjsonschema.JsonSchemaException:
        pass
    else:
        if not holds_integer_float(event_type, document):
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
