"""One step of the processor: apply one call at one input position to a licensee's state.

Exactness recipe (see README "Exactly once in effect"):
- a position at or before `last_offset` of its partition is a REPLAY after a crash: nothing is counted
  again, but the outputs that position produced (billable delta, alerts fired there) are emitted again;
- a known event key at another position is a DUPLICATE: nothing is counted, its billable delta (same
  usage_id) is emitted again so a sink that missed it still gets it;
- an event more than `lateness` behind the licensee's event-time high-watermark is LATE (to the DLQ).
Sinks dedupe by usage_id and alert_id, so re-emission is harmless.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from services.core.agreements import Agreement
from services.core.events import ApiCall, UsageRecorded
from services.processor.domain import dedupe, windows
from services.processor.domain.rules import Context, evaluate
from services.processor.domain.state import FiredAlert, LicenseeState

COUNTED, DUPLICATE, REPLAYED, LATE = "counted", "duplicate", "replayed", "late"


@dataclass(frozen=True, slots=True)
class Policy:
    """Bounds of the processor's memory and tolerance."""

    lateness: timedelta = timedelta(days=7)
    dedupe_horizon: timedelta = timedelta(days=7)
    dedupe_cap: int = 10_000
    # Keys this close behind their partition's last handled offset outlive the horizon (see dedupe.py).
    replay_window: int = 100_000


@dataclass(frozen=True, slots=True)
class Position:
    """Where a call sits in the input topic."""

    partition: int
    offset: int


@dataclass(slots=True)
class Outcome:
    """What one step decided and what must be sent."""

    kind: str
    usage: UsageRecorded | None = None
    alerts: list[dict[str, Any]] = field(default_factory=list)
    new_alerts: int = 0
    reason: str = ""


def billable(call: ApiCall) -> UsageRecorded:
    """The billable delta of one counted call, in its UTC hour."""
    start, end = windows.hour_window(call.time)
    return UsageRecorded.for_call(call, start, end)


def apply(
    state: LicenseeState,
    call: ApiCall,
    at: Position,
    agreement: Agreement | None,
    now: datetime,
    policy: Policy,
) -> Outcome:
    """Apply `call`, read at `at`, to `state` (mutated in place) and say what to emit."""
    key = dedupe.digest(call.key)
    if at.offset <= state.last_offset.get(at.partition, -1):
        return _replay(state, call, key, at)
    state.last_offset[at.partition] = at.offset
    event_time = windows.epoch(call.time)
    hwm = state.high_watermark
    if hwm is not None and event_time < hwm - policy.lateness.total_seconds():
        return Outcome(LATE, reason=f"late: more than {policy.lateness} behind the licensee's event time")
    if key in state.seen:
        return Outcome(DUPLICATE, usage=billable(call))
    outcome = _count(state, call, key, at, agreement, now)
    state.high_watermark = event_time if hwm is None else max(hwm, event_time)
    # Pruning scans the state, so do it when the watermark enters a new minute or the cap is passed.
    if (
        hwm is None
        or event_time // windows.MINUTE > hwm // windows.MINUTE
        or len(state.seen) > policy.dedupe_cap
    ):
        prune(state, policy)
    return outcome


def _replay(state: LicenseeState, call: ApiCall, key: str, at: Position) -> Outcome:
    if key not in state.seen:
        # Not remembered: it was late the first time (or evicted by the cap, or re-read from further back
        # than the replay window), so it goes where it went.
        return Outcome(REPLAYED, reason="late: replayed event that was not counted")
    alerts = [
        f.envelope for f in state.fired.values() if (f.partition, f.offset) == (at.partition, at.offset)
    ]
    return Outcome(REPLAYED, usage=billable(call), alerts=alerts)


def _count(
    state: LicenseeState, call: ApiCall, key: str, at: Position, agreement: Agreement | None, now: datetime
) -> Outcome:
    month = state.month(windows.month_key(call.time))
    month.add(call.app_id, call.records)
    minute = windows.minute_index(call.time)
    state.minutes[minute] = state.minutes.get(minute, 0) + 1
    dedupe.remember(state.seen, key, at.partition, at.offset, windows.epoch(call.time))
    ctx = Context(
        call,
        agreement,
        month,
        windows.month_window(call.time),
        state.minutes[minute],
        windows.minute_window(minute),
        now,
    )
    outcome = Outcome(COUNTED, usage=billable(call))
    for alert in evaluate(ctx):
        if alert.alert_id in state.fired:
            continue
        envelope = alert.to_cloudevent()
        state.fired[alert.alert_id] = FiredAlert(
            alert.rule,
            windows.epoch(alert.window_start),
            windows.epoch(alert.window_end),
            at.partition,
            at.offset,
            envelope,
        )
        outcome.alerts.append(envelope)
        outcome.new_alerts += 1
    return outcome


def prune(state: LicenseeState, policy: Policy) -> None:
    """Forget windows no late event can reach any more, and dedupe keys past the horizon or cap."""
    if state.high_watermark is None:
        return
    oldest = state.high_watermark - policy.lateness.total_seconds()
    oldest_minute = int(oldest // windows.MINUTE)
    for minute in [m for m in state.minutes if m < oldest_minute]:
        del state.minutes[minute]
    oldest_month = windows.month_key(windows.from_epoch(oldest))
    for month in [m for m in state.months if m < oldest_month]:
        del state.months[month]
    for alert_id in [a for a, f in state.fired.items() if f.window_end <= oldest]:
        del state.fired[alert_id]
    horizon = state.high_watermark - policy.dedupe_horizon.total_seconds()
    keep_from = {p: last - policy.replay_window for p, last in state.last_offset.items()}
    state.evicted += dedupe.forget_older_than(state.seen, horizon, policy.dedupe_cap, keep_from)
