"""Agreement rules: which alerts hold after one counted call.

Rules return every alert whose condition holds now; the caller fires each alert id once, so the first
call that makes a condition hold is the crossing call and becomes the evidence.

Severities: `warning` for volume.warning and app.unregistered (worth a look, not yet a breach of terms);
`critical` for volume.breach, volume.severe, rate.breach, government.unnotified and agreement.missing
(the licensee is outside its contract, or there is no contract at all).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from services.core.agreements import Agreement
from services.core.events import AlertRaised, ApiCall

WARNING, CRITICAL = "warning", "critical"
VOLUME_LEVELS = (("volume.warning", WARNING), ("volume.breach", CRITICAL), ("volume.severe", CRITICAL))
RULES = (
    "volume.warning",
    "volume.breach",
    "volume.severe",
    "rate.breach",
    "app.unregistered",
    "government.unnotified",
    "agreement.missing",
)


@dataclass(frozen=True, slots=True)
class MonthUsage:
    """Counted calls and records of one licensee in one calendar month (UTC)."""

    calls: int
    records: int


@dataclass(frozen=True, slots=True)
class Context:
    """What the rules see about one counted call."""

    call: ApiCall
    agreement: Agreement | None
    month: MonthUsage
    month_window: tuple[datetime, datetime]
    minute_calls: int
    minute_window: tuple[datetime, datetime]
    detected_at: datetime


def threshold(limit: int, ratio: float) -> int:
    """The smallest count that reaches `ratio` of `limit` (the small epsilon absorbs float noise)."""
    return max(1, math.ceil(limit * ratio - 1e-9))


def _alert(
    ctx: Context, rule: str, severity: str, window: tuple[datetime, datetime], **extra: object
) -> AlertRaised:
    call = ctx.call
    return AlertRaised(
        licensee_id=call.licensee_id,
        rule=rule,
        severity=severity,
        window_start=window[0],
        window_end=window[1],
        detected_at=ctx.detected_at,
        event_ids=(call.event_id,),
        app_id=call.app_id,
        org_id=call.org_id,
        org_type=call.org_type,
        event_time=call.time,
        **extra,  # type: ignore[arg-type]
    )


def volume(ctx: Context, agreement: Agreement) -> list[AlertRaised]:
    """volume.warning|breach|severe on calls and on records per calendar month."""
    limits = agreement.limits
    found = []
    for metric, observed, limit in (
        ("calls", ctx.month.calls, limits.calls_per_month),
        ("records", ctx.month.records, limits.records_per_month),
    ):
        ratios = (limits.warning_ratio, 1.0, limits.severe_ratio)
        for (rule, severity), ratio in zip(VOLUME_LEVELS, ratios, strict=True):
            if limit > 0 and observed >= threshold(limit, ratio):
                found.append(
                    _alert(
                        ctx,
                        rule,
                        severity,
                        ctx.month_window,
                        subject=metric,
                        metric=metric,
                        observed=observed,
                        limit=limit,
                    )
                )
    return found


def rate(ctx: Context, agreement: Agreement) -> list[AlertRaised]:
    """rate.breach: more calls in one UTC minute than calls_per_minute."""
    limit = agreement.limits.calls_per_minute
    if ctx.minute_calls <= limit:
        return []
    return [
        _alert(
            ctx,
            "rate.breach",
            CRITICAL,
            ctx.minute_window,
            subject="calls",
            metric="calls",
            observed=ctx.minute_calls,
            limit=limit,
        )
    ]


def unregistered_app(ctx: Context, agreement: Agreement) -> list[AlertRaised]:
    """app.unregistered: the call came from an app the agreement does not list."""
    if agreement.app_registered(ctx.call.app_id):
        return []
    return [_alert(ctx, "app.unregistered", WARNING, ctx.month_window, subject=ctx.call.app_id)]


def government(ctx: Context, agreement: Agreement) -> list[AlertRaised]:
    """government.unnotified: government use the agreement neither allows nor was told of beforehand."""
    call = ctx.call
    if call.org_type != "government" or agreement.government_call_allowed(call.org_id, call.time):
        return []
    return [_alert(ctx, "government.unnotified", CRITICAL, ctx.month_window, subject=call.org_id)]


def evaluate(ctx: Context) -> list[AlertRaised]:
    """Every alert whose condition holds after counting `ctx.call`."""
    agreement = ctx.agreement
    if agreement is None or not agreement.is_active(ctx.call.time):
        return [_alert(ctx, "agreement.missing", CRITICAL, ctx.month_window)]
    return [
        *volume(ctx, agreement),
        *rate(ctx, agreement),
        *unregistered_app(ctx, agreement),
        *government(ctx, agreement),
    ]
