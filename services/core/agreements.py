"""The agreement model (`io.tollgate.agreement.v1`): what a licensee may do and what it pays."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from services.core.errors import ValidationFailed
from services.core.events import cloudevent, format_time, parse_time
from services.core.schemas import AGREEMENT_TYPE, problems

AGREEMENTS_SOURCE = "tollgate/agreements"
DEFAULT_WARNING_RATIO = 0.8
DEFAULT_SEVERE_RATIO = 1.5
DEFAULT_ANOMALY_FACTOR = 3.0
DEFAULT_ANOMALY_CRITICAL_FACTOR = 10.0
# ASCII digits only and no other ISO 8601 forms: date.fromisoformat also reads 20260101 and 2026-W01-1.
_PLAIN_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
BOUND_REASON = "must be a date (YYYY-MM-DD) or an RFC 3339 date-time with a UTC offset"
LICENSEE, GROUP = "licensee", "group"


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
    """Caps: per calendar month (UTC) and per minute; and how far a UTC day may exceed its trailing
    baseline (volume.anomaly: a warning above `anomaly_factor` times it, critical above the other)."""

    calls_per_month: int
    records_per_month: int
    calls_per_minute: int
    warning_ratio: float = DEFAULT_WARNING_RATIO
    severe_ratio: float = DEFAULT_SEVERE_RATIO
    anomaly_factor: float = DEFAULT_ANOMALY_FACTOR
    anomaly_critical_factor: float = DEFAULT_ANOMALY_CRITICAL_FACTOR


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
    # Licensee groups: an account names its group in `parent_id`; a group's own record has kind "group"
    # and only limits, which cap the sum of its members (a 0 cap is no cap on that metric).
    kind: str = LICENSEE
    parent_id: str | None = None

    @property
    def is_group(self) -> bool:
        """Whether this is a licensee group's own record (it judges no call and bills nothing)."""
        return self.kind == GROUP

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


def parse_bound(value: str, end: bool = False) -> datetime:
    """An agreement date as an instant: a plain date is 00:00 UTC that day, or as an `end` (exclusive)
    00:00 UTC the next day, so the day itself is covered; anything else must be RFC 3339 with an offset."""
    if _PLAIN_DATE.fullmatch(value):
        day = date.fromisoformat(value)
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        return start + timedelta(days=1) if end else start
    return parse_time(value)


def parse_agreement(data: dict[str, Any]) -> Agreement:
    """Validate one agreement's data object and build the model; raise ValidationFailed."""
    envelope = cloudevent(AGREEMENT_TYPE, "check", AGREEMENTS_SOURCE, _epoch(), data)
    found = problems(AGREEMENT_TYPE, envelope)
    if found:
        # The caller wrote only the data object, so name fields relative to it.
        raise ValidationFailed([_relative(p) for p in found])
    effective_from, effective_to = _period(data)
    parent_id = _parent(data)
    if data.get("kind") == GROUP:
        return _group(data, effective_from, effective_to)
    plan = data["plan"]
    return Agreement(
        licensee_id=data["licensee_id"], name=data["name"],
        effective_from=effective_from, effective_to=effective_to,
        plan=Plan(**plan),
        limits=_limits(data["limits"]),
        apps={a["app_id"]: a.get("use_case") for a in data["apps"]},
        government_use=data["government_use"],
        government_notices=tuple(
            GovernmentNotice(n["org_id"], parse_time(n["notified_at"]), n["use_case"])
            for n in data["government_notices"]
        ),
        raw=data, parent_id=parent_id,
    )  # fmt: skip


def _parent(data: dict[str, Any]) -> str | None:
    """The account's group; ValidationFailed naming `parent_id` when it names the account itself."""
    parent = data.get("parent_id")
    if parent is not None and parent == data["licensee_id"]:
        reason = "must name another licensee or a group, not the agreement's own licensee_id"
        raise ValidationFailed([{"field": "parent_id", "reason": reason}])
    return parent


_MEMBER_ONLY = ("plan", "apps", "government_use", "government_notices", "parent_id")
_GROUP_CAPS = ("calls_per_month", "records_per_month")


def _group_problems(data: dict[str, Any]) -> list[dict[str, str]]:
    """What a group record may not hold: member terms, a parent, a rate cap; and it needs a month cap."""
    found = [
        {"field": field, "reason": "a group record holds only its limits; its members carry the terms"}
        for field in _MEMBER_ONLY if data.get(field) is not None
    ]  # fmt: skip
    limits = data["limits"]
    if "calls_per_minute" in limits:
        found.append({"field": "limits.calls_per_minute", "reason": "group caps are per month only"})
    if not any(limits.get(cap) for cap in _GROUP_CAPS):
        found.append({"field": "limits", "reason": "a group needs calls_per_month or records_per_month"})
    return found


def _group(data: dict[str, Any], start: datetime, end: datetime | None) -> Agreement:
    """A group's own record: its caps over the members' sum; no plan, apps or government terms."""
    found = _group_problems(data)
    if found:
        raise ValidationFailed(found)
    limits = data["limits"]
    return Agreement(
        licensee_id=data["licensee_id"], name=data["name"], effective_from=start, effective_to=end,
        plan=Plan(0, 0, "XXX", 0, 0),
        limits=Limits(
            calls_per_month=limits.get("calls_per_month", 0),
            records_per_month=limits.get("records_per_month", 0),
            calls_per_minute=0,
            warning_ratio=limits.get("warning_ratio", DEFAULT_WARNING_RATIO),
            severe_ratio=limits.get("severe_ratio", DEFAULT_SEVERE_RATIO),
        ),
        apps={}, government_use="allowed", government_notices=(), raw=data, kind=GROUP,
    )  # fmt: skip


def check_groups(agreements: list[Agreement]) -> list[dict[str, object]]:
    """Problems of a file's groups (index, field, reason): one level only, so no cycle and no nesting."""
    parent_of = {a.licensee_id: a.parent_id for a in agreements}
    problems: list[dict[str, object]] = []
    for index, agreement in enumerate(agreements):
        parent = agreement.parent_id
        if parent is None or parent_of.get(parent) is None:
            continue
        if parent_of.get(parent) == agreement.licensee_id:
            reason = f"{agreement.licensee_id} -> {parent} -> {agreement.licensee_id} is a cycle"
        else:
            reason = f"{parent} belongs to {parent_of[parent]} itself: groups are one level deep"
        problems.append({"index": index, "field": "parent_id", "reason": reason})
    return problems


def _relative(problem: dict[str, str]) -> dict[str, str]:
    """A schema problem named relative to the data object, with a plain reason for the two dates."""
    field = problem["field"].removeprefix("data.")
    if field in ("effective_from", "effective_to") and "valid under any" in problem["reason"]:
        return {**problem, "field": field, "reason": BOUND_REASON}
    return {**problem, "field": field}


def _limits(limits: dict[str, Any]) -> Limits:
    """The limits; the critical anomaly factor must lie above the warning one (ValidationFailed naming it)."""
    built = Limits(**limits)
    if built.anomaly_critical_factor <= built.anomaly_factor:
        reason = (
            f"must be greater than limits.anomaly_factor ({built.anomaly_factor:g}); "
            f"it defaults to {DEFAULT_ANOMALY_CRITICAL_FACTOR:g}"
        )
        raise ValidationFailed([{"field": "limits.anomaly_critical_factor", "reason": reason}])
    return built


def _period(data: dict[str, Any]) -> tuple[datetime, datetime | None]:
    """`effective_from` and the exclusive `effective_to` as instants; ValidationFailed naming the field."""
    bounds: list[datetime | None] = []
    for field in ("effective_from", "effective_to"):
        value = data.get(field)
        try:
            bounds.append(parse_bound(value, end=field == "effective_to") if value else None)
        except (ValueError, OverflowError) as exc:
            # The schema's format check is looser (its \d takes any Unicode digit): the parse decides.
            raise ValidationFailed([{"field": field, "reason": BOUND_REASON}]) from exc
    start, end = bounds
    assert start is not None  # noqa: S101 - the schema requires effective_from
    if end is not None and end <= start:
        raise ValidationFailed([{"field": "effective_to", "reason": "must be after effective_from"}])
    return start, end


def agreement_from_cloudevent(event: dict[str, Any]) -> Agreement:
    """Build the model from an agreements-topic envelope."""
    return parse_agreement(event["data"])


class _TextTimesLoader(yaml.SafeLoader):
    """Safe YAML that keeps dates and times as written: the schema and `parse_bound` judge the text, so an
    impossible `2026-09-31` is a named field error rather than a crash, and no naive local time slips in."""


_TextTimesLoader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_agreements(path: Path) -> list[Agreement]:
    """Read a YAML or JSON file holding `agreements: [...]` (or a bare list); validate every entry."""
    document = yaml.load(path.read_text(encoding="utf-8"), Loader=_TextTimesLoader)  # noqa: S506 - a SafeLoader
    items = document.get("agreements") if isinstance(document, dict) else document
    if not isinstance(items, list):
        raise ValidationFailed([{"field": "agreements", "reason": "expected a list of agreements"}])
    parsed: list[Agreement] = []
    failures: list[dict[str, object]] = []
    for index, item in enumerate(items):
        try:
            parsed.append(parse_agreement(item))
        except ValidationFailed as exc:
            failures += [{"index": index, **p} for p in exc.problems]
    failures += check_groups(parsed)
    if failures:
        raise ValidationFailed(failures)
    return parsed


def _epoch() -> datetime:
    return parse_time("1970-01-01T00:00:00Z")
