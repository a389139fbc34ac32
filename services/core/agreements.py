"""The agreement model (`io.tollgate.agreement.v1`): what a licensee may do and what it pays."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from services.core.errors import ValidationFailed
from services.core.events import cloudevent, format_time, parse_time
from services.core.schemas import AGREEMENT_TYPE, problems

AGREEMENTS_SOURCE = "tollgate/agreements"
DEFAULT_WARNING_RATIO = 0.8
DEFAULT_SEVERE_RATIO = 1.5


@dataclass(frozen=True, slots=True)
class Plan:
    """Prices in integer minor units of `currency`."""

    monthly_fee_minor: int
    annual_fee_minor: int
    currency: str
    included_records: int
    overage_per_1000_records_minor: int


@dataclass(frozen=True, slots=True)
class Limits:
    """Caps: per calendar month (UTC) and per minute."""

    calls_per_month: int
    records_per_month: int
    calls_per_minute: int
    warning_ratio: float = DEFAULT_WARNING_RATIO
    severe_ratio: float = DEFAULT_SEVERE_RATIO


@dataclass(frozen=True, slots=True)
class GovernmentNotice:
    """Prior notice that a government org would use the data."""

    org_id: str
    notified_at: datetime
    use_case: str


@dataclass(frozen=True, slots=True)
class Agreement:
    """A licensee's contract."""

    licensee_id: str
    name: str
    effective_from: datetime
    effective_to: datetime | None
    plan: Plan
    limits: Limits
    apps: dict[str, str | None]
    government_use: str
    government_notices: tuple[GovernmentNotice, ...]
    raw: dict[str, Any]

    def is_active(self, at: datetime) -> bool:
        """Whether the agreement covers the instant `at` (from inclusive, to exclusive)."""
        if at < self.effective_from:
            return False
        return self.effective_to is None or at < self.effective_to

    def app_registered(self, app_id: str) -> bool:
        """Whether `app_id` is a registered app of this licensee."""
        return app_id in self.apps

    def apps_without_use_case(self) -> list[str]:
        """Registered apps that declare no use case."""
        return sorted(app for app, use in self.apps.items() if not (use or "").strip())

    def government_call_allowed(self, org_id: str, at: datetime) -> bool:
        """A government call is allowed if the agreement allows it, or a notice for that org came first."""
        if self.government_use == "allowed":
            return True
        if self.government_use == "prohibited":
            return False
        return any(n.org_id == org_id and n.notified_at < at for n in self.government_notices)

    def first_notice(self, org_id: str) -> datetime | None:
        """When the licensee first notified use by `org_id`, if ever."""
        dates = [n.notified_at for n in self.government_notices if n.org_id == org_id]
        return min(dates) if dates else None

    def to_cloudevent(self) -> dict[str, Any]:
        """The envelope published on the compacted agreements topic."""
        version = f"{self.licensee_id}@{format_time(self.effective_from)}"
        return cloudevent(AGREEMENT_TYPE, version, AGREEMENTS_SOURCE, self.effective_from, self.raw)


def parse_agreement(data: dict[str, Any]) -> Agreement:
    """Validate one agreement's data object and build the model; raise ValidationFailed."""
    envelope = cloudevent(AGREEMENT_TYPE, "check", AGREEMENTS_SOURCE, _epoch(), data)
    found = problems(AGREEMENT_TYPE, envelope)
    if found:
        # The caller wrote only the data object, so name fields relative to it.
        raise ValidationFailed([{**p, "field": p["field"].removeprefix("data.")} for p in found])
    plan, limits = data["plan"], data["limits"]
    effective_to = data.get("effective_to")
    agreement = Agreement(
        licensee_id=data["licensee_id"], name=data["name"],
        effective_from=parse_time(data["effective_from"]),
        effective_to=parse_time(effective_to) if effective_to else None,
        plan=Plan(**plan),
        limits=Limits(**limits),
        apps={a["app_id"]: a.get("use_case") for a in data["apps"]},
        government_use=data["government_use"],
        government_notices=tuple(
            GovernmentNotice(n["org_id"], parse_time(n["notified_at"]), n["use_case"])
            for n in data["government_notices"]
        ),
        raw=data,
    )
    if agreement.effective_to is not None and agreement.effective_to <= agreement.effective_from:
        raise ValidationFailed([{"field": "effective_to", "reason": "must be after effective_from"}])
    return agreement


def agreement_from_cloudevent(event: dict[str, Any]) -> Agreement:
    """Build the model from an agreements-topic envelope."""
    return parse_agreement(event["data"])


def load_agreements(path: Path) -> list[Agreement]:
    """Read a YAML or JSON file holding `agreements: [...]` (or a bare list); validate every entry."""
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    items = document.get("agreements") if isinstance(document, dict) else document
    if not isinstance(items, list):
        raise ValidationFailed([{"field": "agreements", "reason": "expected a list of agreements"}])
    parsed: list[Agreement] = []
    failures: list[dict[str, object]] = []
    for index, item in enumerate(items):
        try:
            parsed.append(parse_agreement(_normalise(item)))
        except ValidationFailed as exc:
            failures += [{"index": index, **p} for p in exc.problems]
    if failures:
        raise ValidationFailed(failures)
    return parsed


def _normalise(item: Any) -> Any:
    """YAML turns unquoted timestamps into datetimes; the schema wants RFC 3339 strings."""
    if isinstance(item, dict):
        return {k: _normalise(v) for k, v in item.items()}
    if isinstance(item, list):
        return [_normalise(v) for v in item]
    if isinstance(item, datetime):
        return format_time(item)
    return item


def _epoch() -> datetime:
    return parse_time("1970-01-01T00:00:00Z")
