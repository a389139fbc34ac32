"""One step of the processor: decide what one call does to its licensee's keyed state.

Pure: the step reads through the `StateReader` port and returns the writes it wants; the edge applies
them only after the whole decision was made, so a call whose decision raises leaves no trace.

Exactness (README "Exactly once"): the edge runs inside a Kafka transaction that holds the state
changelog, the outputs and the input offsets together, so a crash re-reads calls whose effects were
all aborted. Within the dedupe horizon a known `source` + `id` counts once, at any volume: each key
is its own state entry, expiring by event time.

Time bounds, in this order:
- an event time beyond the processor's clock plus `max_lead`, or older than the clock minus `max_age`,
  is refused (DLQ): no single record moves the stream time past the clock plus the lead;
- an event more than `lateness` behind the partition's stream time (the latest accepted event time of
  its input partition, as in Kafka Streams) is LATE (DLQ). The dedupe entries live `dedupe_horizon`
  (>= lateness) past their event time, so every call that is not late still finds its key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from services.core.agreements import Agreement
from services.core.events import AlertRaised, ApiCall
from services.processor.domain import anomaly, dedupe, usage, windows
from services.processor.domain.rules import Context, MonthUsage, alert, evaluate
from services.processor.domain.store import StateReader, Write

COUNTED, DUPLICATE, LATE, OUT_OF_BOUNDS = "counted", "duplicate", "late", "out_of_bounds"
# Expiry past the bound: the store drops a value once the high-water *reaches* its expiry.
_MARGIN = 2.0


@dataclass(frozen=True, slots=True)
class Policy:
    """Bounds of the processor's memory and tolerance."""

    lateness: timedelta = timedelta(days=7)
    dedupe_horizon: timedelta = timedelta(days=7)
    max_age: timedelta = timedelta(days=400)
    max_lead: timedelta = timedelta(minutes=5)


@dataclass(slots=True)  # not frozen: one is built per call, and frozen ones cost more to build
class Counts:
    """The licensee's latest counts after a counted call (what the gauges show)."""

    month: str
    month_calls: int
    month_records: int
    minute_calls: int


@dataclass(slots=True)
class Decision:
    """What one step decided: its outcome, the state to write and what to emit."""

    kind: str
    event_time: float
    writes: list[Write] = field(default_factory=list)
    # A counted call joins its licensee's open usage buckets; True when it opened the first of them.
    opened_usage: bool = False
    alerts: list[AlertRaised] = field(default_factory=list)
    reason: str = ""
    # The partition's new stream time, when this call moved it forward.
    stream_time: float | None = None
    counts: Counts | None = None


def out_of_bounds(event_time: float, now: datetime, policy: Policy) -> str:
    """Why an event time lies outside what the processor accepts, or ''."""
    clock = now.timestamp()
    if event_time > clock + policy.max_lead.total_seconds():
        return f"out_of_bounds: event time more than {policy.max_lead} ahead of the processor's clock"
    if event_time < clock - policy.max_age.total_seconds():
        return f"out_of_bounds: event time more than {policy.max_age} before the processor's clock"
    return ""


def decide(
    call: ApiCall,
    state: StateReader,
    stream_time: float | None,
    agreement: Agreement | None,
    now: datetime,
    policy: Policy,
    position: int = 0,
) -> Decision:
    """Decide `call` (read at input `position`) against its licensee's state and the partition's stream
    time."""
    event_time = windows.epoch(call.time)
    reason = out_of_bounds(event_time, now, policy)
    if reason:
        return Decision(OUT_OF_BOUNDS, event_time, reason=reason)
    lateness = policy.lateness.total_seconds()
    if stream_time is not None and event_time < stream_time - lateness:
        return Decision(LATE, event_time, reason=f"late: more than {policy.lateness} behind stream time")
    moved = event_time if stream_time is None or event_time > stream_time else None
    key = dedupe.DEDUPE_PREFIX + dedupe.digest(call.key)
    if state.get(key) is not None:
        return Decision(DUPLICATE, event_time, stream_time=moved)
    decision = Decision(COUNTED, event_time, stream_time=moved)
    horizon = policy.dedupe_horizon.total_seconds()
    decision.writes.append(Write(key, int(event_time), event_time + horizon + _MARGIN))
    _bill(decision, call, state, agreement, position)
    _count(decision, call, state, agreement, now, lateness)
    return decision


def _bill(
    decision: Decision, call: ApiCall, state: StateReader, agreement: Agreement | None, position: int
) -> None:
    """Add the call to its open usage bucket; a bucket never expires: it leaves only as a delta."""
    at = decision.event_time
    bucket = usage.bucket_id(call, agreement, at)
    key = usage.BUCKET_PREFIX + bucket
    held = state.get(key)
    decision.writes.append(Write(key, usage.add(held, call, position, at), None))
    if held is None:
        index = state.get(usage.OPEN_KEY) or []
        decision.writes.append(Write(usage.OPEN_KEY, [*index, bucket], None))
        decision.opened_usage = not index


def _count(
    decision: Decision,
    call: ApiCall,
    state: StateReader,
    agreement: Agreement | None,
    now: datetime,
    lateness: float,
) -> None:
    at = decision.event_time
    month_key = windows.month_key_of_day(int(at // 86_400))
    month_window = windows.month_bounds(month_key)
    month_expiry = month_window[1].timestamp() + lateness + _MARGIN
    calls, records = _add_month(decision, state, f"m:{month_key}", call, month_expiry)
    minute = int(at // windows.MINUTE)
    minute_window = windows.minute_window(minute)
    minute_key = f"n:{minute}"
    minute_calls = int(state.get(minute_key) or 0) + 1
    decision.writes.append(Write(minute_key, minute_calls, minute_window[1].timestamp() + lateness + _MARGIN))
    day = anomaly.count(decision.writes, state, call, decision.event_time, lateness)
    decision.counts = Counts(month_key, calls, records, minute_calls)
    ctx = Context(
        call, agreement, MonthUsage(calls, records), month_window, minute_calls, minute_window, now, day
    )
    _fire(decision, state, ctx, lateness)


def _fire(decision: Decision, state: StateReader, ctx: Context, lateness: float) -> None:
    """Alert every breach that holds and has not fired yet (its marker is absent), and mark it."""
    for breach in evaluate(ctx, lambda marker: state.get(marker) is not None):
        decision.alerts.append(alert(ctx, breach))
        decision.writes.append(Write(breach.marker, 1, breach.window[1].timestamp() + lateness + _MARGIN))


def _add_month(
    decision: Decision, state: StateReader, key: str, call: ApiCall, expires_at: float
) -> tuple[int, int]:
    """Add one call to the month's totals and to its app's; return the month's new totals."""
    found = state.get(key)
    calls, records, apps = found if found is not None else (0, 0, {})
    app = apps.get(call.app_id) or (0, 0)
    apps = {**apps, call.app_id: [app[0] + 1, app[1] + call.records]}
    totals = (int(calls) + 1, int(records) + call.records)
    decision.writes.append(Write(key, [totals[0], totals[1], apps], expires_at))
    return totals
