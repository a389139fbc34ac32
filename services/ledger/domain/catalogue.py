"""The price catalogue: the platform's published tiers, read from a YAML (or JSON) file and validated.

Every problem is named by tier index and field (`tiers[2].overage_per_1000_records_minor`), like the
agreements loader does. Money is integer minor units: `100.0` where an integer is asked for is refused,
never read as 100. The schema is `schemas/io.tollgate.price-catalogue.v1.schema.json`.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from services.core.schemas import SCHEMAS_DIR
from services.ledger.errors import LedgerError

SCHEMA_FILE = SCHEMAS_DIR / "io.tollgate.price-catalogue.v1.schema.json"
DEFAULT_CATALOGUE = Path(__file__).resolve().parent / "price_catalogue.yaml"
VOLUME_REASON = "must state its included volume: included_calls and/or included_records, as an integer"


class CatalogueError(LedgerError):
    """A price catalogue that cannot be used; `problems` lists `{index, field, reason}`."""

    def __init__(self, source: str, problems: list[dict[str, Any]]) -> None:
        self.source, self.problems = source, problems
        shown = "; ".join(_describe(p) for p in problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        super().__init__(f"price catalogue {source}: {shown}{more}")


@dataclass(frozen=True, slots=True)
class Tier:
    """One published tier; `None` as an included volume means no limit, as an overage price: not sold."""

    tier_id: str
    name: str
    monthly_fee_minor: int = 0
    annual_fee_minor: int = 0
    included_calls: int | None = None
    included_records: int | None = None
    overage_per_1000_calls_minor: int | None = None
    overage_per_1000_records_minor: int | None = None


@dataclass(frozen=True, slots=True)
class Catalogue:
    """The published tiers, in the file's order, all priced in one currency."""

    catalogue_id: str
    currency: str
    tiers: tuple[Tier, ...]


def load_catalogue(path: Path) -> Catalogue:
    """Read and validate the catalogue at `path`; CatalogueError names what is wrong."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogueError(str(path), [{"index": None, "field": "(file)", "reason": str(exc)}]) from exc
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        reason = f"is not valid YAML or JSON: {exc}"
        raise CatalogueError(str(path), [{"index": None, "field": "(file)", "reason": reason}]) from exc
    return parse_catalogue(document, str(path))


@functools.cache
def default_catalogue() -> Catalogue:
    """The catalogue shipped with Tollgate (the demo's published tiers)."""
    return load_catalogue(DEFAULT_CATALOGUE)


def parse_catalogue(document: Any, source: str = "(document)") -> Catalogue:
    """Validate a parsed catalogue document and build the model; CatalogueError on any problem."""
    found = schema_problems(document) or _duplicate_ids(document["tiers"])
    if found:
        raise CatalogueError(source, found)
    tiers = tuple(Tier(**{k: v for k, v in tier.items() if k != "description"}) for tier in document["tiers"])
    return Catalogue(document["catalogue_id"], document["currency"], tiers)


def schema_problems(document: Any) -> list[dict[str, Any]]:
    """Every schema violation as `{index, field, reason}`; `index` is the tier's position, if any."""
    errors = sorted(_validator().iter_errors(document), key=lambda e: [str(p) for p in e.absolute_path])
    found = [_problem(error) for error in errors]
    # A bad included volume also fails the "states a volume" rule: name the field, not both.
    named = {p["index"] for p in found if p["field"] in ("included_calls", "included_records")}
    return [p for p in found if not (p["reason"] == VOLUME_REASON and p["index"] in named)]


def _problem(error: jsonschema.ValidationError) -> dict[str, Any]:
    path = list(error.absolute_path)
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = [k for k in error.validator_value if k not in error.instance]  # type: ignore[union-attr]
        path += missing[:1]
    in_tier = len(path) > 1 and path[0] == "tiers" and isinstance(path[1], int)
    index, rest = (path[1], path[2:]) if in_tier else (None, path)
    field = ".".join(str(p) for p in rest) or ("(tier)" if in_tier else "(catalogue)")
    reason = VOLUME_REASON if error.validator == "anyOf" and in_tier and not rest else error.message
    if error.validator == "type" and field.endswith("_minor"):
        reason = f"must be an integer of minor units (e.g. 10000 for 100.00), not {error.instance!r}"
    # Echoing a huge offending value back helps nobody.
    return {"index": index, "field": field, "reason": reason if len(reason) <= 200 else reason[:197] + "..."}


def _duplicate_ids(tiers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: dict[str, int] = {}
    found = []
    for index, tier in enumerate(tiers):
        if tier["tier_id"] in seen:
            found.append({"index": index, "field": "tier_id",
                          "reason": f"{tier['tier_id']!r} is already the id of tier {seen[tier['tier_id']]}"})
        seen.setdefault(tier["tier_id"], index)
    return found


def _describe(problem: dict[str, Any]) -> str:
    where = f"tier {problem['index']}: " if problem["index"] is not None else ""
    return f"{where}{problem['field']}: {problem['reason']}"


def _strict_integer(_: object, instance: object) -> bool:
    return isinstance(instance, int) and not isinstance(instance, bool)


@functools.cache
def _validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    base = jsonschema.validators.validator_for(schema)
    checker = base.TYPE_CHECKER.redefine("integer", _strict_integer)
    return jsonschema.validators.extend(base, type_checker=checker)(schema)
