"""Agreement rules: which breaches hold after one counted call.

Rules return the breaches whose condition holds now, as cheap values; given the step's `fired` (whether a
breach's marker is in the licensee's state), only those that have not fired yet. The step fires each once
and only then builds the alert, so the first call that makes a condition hold is the crossing call and
becomes the evidence.

Severities: `warning` for volume.warning and app.unregistered (worth a look, not yet a breach of terms);
`critical` for volume.breach, volume.severe, rate.breach, government.unnotified and agreement.missing
(the licensee is outside its contract, or there is no contract at all). volume.anomaly (a UTC day above
`anomaly_factor` times the licensee's trailing baseline, `anomaly.py`) is a warning, and critical above
`anomaly_critical_factor`: unreasonable volume, whatever the caps say.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from services.core.agreements import Agreement, Limits
from services.core.events import AlertRaised, ApiCall
from services.processor.domain.anomaly import DayUsage, within

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
    "volume.anomaly",
)
ANOMALY = "volume.anomaly"
# Whether an alert's marker (`marker`) is in the licensee's state: the alert has fired already.
Fired = Callable[[str], bool]
Level = tuple[int, str, str]  # threshold, rule, severity


@dataclass(slots=True)  # not frozen: one is built per call, and frozen ones cost more to build
class MonthUsage:
    """Counted calls and records of one licensee in one calendar month (UTC)."""

    calls: int
    records: int


@dataclass(slots=True)  # not frozen: one is built per call, and frozen ones cost more to build
class Context:
    """What the rules see about one counted call."""

    call: ApiCall
    agreement: Agreement | None
    month: MonthUsage
    month_window: tuple[datetime, datetime]
    minute_calls: int
    minute_window: tuple[datetime, datetime]
    detected_at: datetime
    day: DayUsage | None = None


@dataclass(frozen=True, slots=True)
class Breach:
    """A rule whose condition holds: what its alert would say."""

    rule: str
    severity: str
    window: tuple[datetime, datetime]
    subject: str = ""
    observed: int | None = None
    limit: int | None = None
    # volume.anomaly: the baseline the day was judged against, and the factor it exceeded.
    baseline: float | None = None
    factor: float | None = None

    @property
    def marker(self) -> str:
        """The state key that records this alert as fired (same identity as the alert id)."""
        return marker(self.rule, self.severity, self.window, self.subject)


def marker(rule: str, severity: str, window: tuple[datetime, datetime], subject: str = "") -> str:
    """The state key that records an alert as fired: rule, severity, window start and subject."""
    return f"f:{rule}:{severity}:{int(window[0].timestamp())}:{subject}"


@functools.lru_cache(maxsize=4096)
def threshold(limit: int, ratio: float) -> int:
    """The smallest count that reaches `ratio` of `limit` (the small epsilon absorbs float noise)."""
    return max(1, math.ceil(limit * ratio - 1e-9))


def alert(ctx: Context, breach: Breach) -> AlertRaised:
    """The alert of `breach`, with the call that crossed it as evidence."""
    call = ctx.call
    metric = breach.subject if breach.observed is not None else None
    top = ctx.day.top_apps(breach.subject) if breach.baseline is not None and ctx.day else ()
    return AlertRaised(
        licensee_id=call.licensee_id, rule=breach.rule, severity=breach.severity,
        window_start=breach.window[0], window_end=breach.window[1], detected_at=ctx.detected_at,
        subject=breach.subject, metric=metric, observed=breach.observed, limit=breach.limit,
        event_ids=(call.event_id,), app_id=call.app_id, org_id=call.org_id, org_type=call.org_type,
        event_time=call.time, baseline=breach.baseline, factor=breach.factor, top_apps=tuple(top),
    )  # fmt: skip


def volume(ctx: Context, agreement: Agreement, fired: Fired | None = None) -> list[Breach]:
    """volume.warning|breach|severe on calls and on records per calendar month."""
    return month_caps(ctx.month, ctx.month_window, agreement.limits, fired)


def month_caps(
    month: MonthUsage, window: tuple[datetime, datetime], limits: Limits, fired: Fired | None = None
) -> list[Breach]:
    """The volume levels `month` reached against `limits` (a licensee's, or a group's over its members),
    lowest first per metric, leaving out those `fired` says have fired; subject = the metric. A cap of 0
    is no cap."""
    found = []
    for metric, observed, limit in (
        ("calls", month.calls, limits.calls_per_month),
        ("records", month.records, limits.records_per_month),
    ):
        if limit <= 0:
            continue
        start, levels = _levels(limit, limits.warning_ratio, limits.severe_ratio)
        if observed < start:
            continue
        reached = [level for level in levels if observed >= level[0]]
        if fired is not None:
            reached = unfired(reached, window, metric, fired)
        found += [Breach(rule, severity, window, metric, observed, limit) for _, rule, severity in reached]
    return found


def unfired(
    levels: list[Level], window: tuple[datetime, datetime], subject: str, fired: Fired
) -> list[Level]:
    """The reached `levels` of one metric (lowest first) that have not fired. A level fires together with
    every unfired lower one, so the walk goes down from the highest and stops at the first that fired:
    every level below it has fired too, and its marker needs no read."""
    found: list[Level] = []
    for level in reversed(levels):
        if fired(marker(level[1], level[2], window, subject)):
            break
        found.append(level)
    found.reverse()
    return found


@functools.lru_cache(maxsize=4096)
def _levels(
    limit: int, warning_ratio: float, severe_ratio: float
) -> tuple[int, tuple[tuple[int, str, str], ...]]:
    """Where a capped metric's levels start, and each level's threshold, rule and severity."""
    ratios = (warning_ratio, 1.0, severe_ratio)
    # By threshold, lowest first: `unfired` relies on that order.
    levels = sorted(zip(ratios, VOLUME_LEVELS, strict=True))
    thresholds = tuple((threshold(limit, ratio), rule, severity) for ratio, (rule, severity) in levels)
    return threshold(limit, min(warning_ratio, 1.0)), thresholds


def rate(ctx: Context, agreement: Agreement) -> list[Breach]:
    """rate.breach: more calls in one UTC minute than calls_per_minute."""
    limit = agreement.limits.calls_per_minute
    if ctx.minute_calls <= limit:
        return []
    return [Breach("rate.breach", CRITICAL, ctx.minute_window, "calls", ctx.minute_calls, limit)]


def unregistered_app(ctx: Context, agreement: Agreement) -> list[Breach]:
    """app.unregistered: the call came from an app the agreement does not list."""
    if agreement.app_registered(ctx.call.app_id):
        return []
    return [Breach("app.unregistered", WARNING, ctx.month_window, ctx.call.app_id)]


def government(ctx: Context, agreement: Agreement) -> list[Breach]:
    """government.unnotified: government use the agreement neither allows nor was told of beforehand."""
    call = ctx.call
    if call.org_type != "government" or agreement.government_call_allowed(call.org_id, call.time):
        return []
    return [Breach("government.unnotified", CRITICAL, ctx.month_window, call.org_id)]


def anomaly(ctx: Context, agreement: Agreement, fired: Fired | None = None) -> list[Breach]:
    """volume.anomaly on calls and on records of the UTC day: above a factor times the day's baseline.
    Lowest level first, like `volume`, and with `fired` only the unfired ones (`unfired`). A baseline of 0
    is no basis: a day can be no multiple of nothing."""
    day = ctx.day
    if day is None or day.baseline is None:
        return []
    limits = agreement.limits
    lowest = min(limits.anomaly_factor, limits.anomaly_critical_factor)
    base_calls, base_records = day.baseline[0], day.baseline[1]
    # The common case, a day within its factor, builds nothing.
    if (base_calls <= 0 or day.calls <= within(base_calls, lowest)) and (
        base_records <= 0 or day.records <= within(base_records, lowest)
    ):
        return []
    found = []
    # Lowest first: agreements.py refuses a critical factor that is not above the warning one.
    factors = {WARNING: limits.anomaly_factor, CRITICAL: limits.anomaly_critical_factor}
    for metric, observed, base in (("calls", day.calls, base_calls), ("records", day.records, base_records)):
        if base <= 0:
            continue
        reached: list[Level] = [
            (limit, ANOMALY, severity)
            for severity, factor in factors.items()
            if observed > (limit := within(base, factor))
        ]
        if fired is not None:
            reached = unfired(reached, day.window, metric, fired)
        found += [
            Breach(ANOMALY, severity, day.window, metric, observed, limit, base, factors[severity])
            for limit, _, severity in reached
        ]
    return found


def evaluate(ctx: Context, fired: Fired | None = None) -> list[Breach]:
    """Every breach whose condition holds after counting `ctx.call`; with `fired`, only those that have
    not fired yet (the volume levels of a metric read their markers from the highest down, see
    `unfired`). So the common call, every held breach fired long ago, builds next to nothing."""
    agreement = ctx.agreement
    # A group's own record caps its members' sum (groups.py); it is no agreement for calls of its own.
    if agreement is None or agreement.is_group or not agreement.is_active(ctx.call.time):
        return _not_fired([Breach("agreement.missing", CRITICAL, ctx.month_window)], fired)
    singles = [*rate(ctx, agreement), *unregistered_app(ctx, agreement), *government(ctx, agreement)]
    return [*volume(ctx, agreement, fired), *_not_fired(singles, fired), *anomaly(ctx, agreement, fired)]


def _not_fired(breaches: list[Breach], fired: Fired | None) -> list[Breach]:
    """`breaches` less those whose marker `fired` finds (all of them without `fired`)."""
    return breaches if fired is None else [b for b in breaches if not fired(b.marker)]
