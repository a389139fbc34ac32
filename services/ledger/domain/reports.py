"""The evidence report an auditor asks for, assembled from query rows and agreements (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from services.core.agreements import Agreement


@dataclass(frozen=True, slots=True)
class AppMonth:
    """Usage of one app in one month."""

    app_id: str
    month: date
    calls: int
    records: int


@dataclass(frozen=True, slots=True)
class OrgUse:
    """What one government org received; first and last seen are event times (first/last event of a delta)."""

    org_id: str
    first_seen: datetime
    last_seen: datetime
    calls: int
    records: int
    calls_after_notice: int = 0
    records_after_notice: int = 0


def registered_apps(agreements: Sequence[Agreement]) -> dict[str, str | None]:
    """Registered apps and their use cases; a later agreement's declaration wins."""
    apps: dict[str, str | None] = {}
    for agreement in sorted(agreements, key=lambda a: a.effective_from):
        apps.update(agreement.apps)
    return apps


def first_notices(agreements: Sequence[Agreement]) -> dict[str, datetime]:
    """The earliest notice of each government org across the agreements."""
    notices: dict[str, datetime] = {}
    for agreement in agreements:
        for notice in agreement.government_notices:
            known = notices.get(notice.org_id)
            notices[notice.org_id] = notice.notified_at if known is None else min(known, notice.notified_at)
    return notices


def usage_report(
    licensee_id: str, agreements: Sequence[Agreement], app_months: Iterable[AppMonth], orgs: Iterable[OrgUse]
) -> dict[str, Any]:
    """Calls and records per app and month, apps without a use case, and each government org's use."""
    apps = registered_apps(agreements)
    rows = sorted(app_months, key=lambda r: (r.month, r.app_id))
    per_app: dict[str, list[int]] = {}
    for row in rows:
        total = per_app.setdefault(row.app_id, [0, 0])
        total[0] += row.calls
        total[1] += row.records
    without = sorted({a for a, use in apps.items() if not (use or "").strip()} | (set(per_app) - set(apps)))
    notices = first_notices(agreements)
    government_use = agreements[-1].government_use if agreements else None
    return {
        "licensee_id": licensee_id,
        "apps": [
            {
                "app_id": r.app_id,
                "month": r.month.strftime("%Y-%m"),
                "calls": r.calls,
                "records": r.records,
                "registered": r.app_id in apps,
                "use_case": apps.get(r.app_id),
            }
            for r in rows
        ],
        "apps_without_use_case": [
            {
                "app_id": app,
                "registered": app in apps,
                "calls": per_app.get(app, [0, 0])[0],
                "records": per_app.get(app, [0, 0])[1],
            }
            for app in without
        ],
        "government": [
            _org(org, notices.get(org.org_id), government_use)
            for org in sorted(orgs, key=lambda o: (o.first_seen, o.org_id))
        ],
    }


def _org(org: OrgUse, notified_at: datetime | None, government_use: str | None) -> dict[str, Any]:
    return {
        "org_id": org.org_id,
        "first_seen": org.first_seen,
        "last_seen": org.last_seen,
        "calls": org.calls,
        "records": org.records,
        # Exact to the call: a call is after notice when the org's first notice is dated strictly before it.
        "calls_before_notice": org.calls - org.calls_after_notice,
        "records_before_notice": org.records - org.records_after_notice,
        "calls_after_notice": org.calls_after_notice,
        "records_after_notice": org.records_after_notice,
        "notified_at": notified_at,
        "notice_first": _notice_first(org, notified_at),
        "government_use": government_use,
    }


def _notice_first(org: OrgUse, notified_at: datetime | None) -> bool:
    """Notice came strictly before the first data the org received: every call of it was after notice.

    Per call that is `notified_at < first_seen`; an aggregated delta brings the processor's verdict for its
    calls (`government_notified`), so the split decides whenever the org made calls."""
    if org.calls > 0:
        return org.calls_after_notice == org.calls
    return notified_at is not None and notified_at < org.first_seen
