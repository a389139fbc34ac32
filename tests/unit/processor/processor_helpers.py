"""Builders shared by the processor's unit tests."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from services.core.agreements import Agreement, load_agreements
from services.core.events import ApiCall
from services.demo.scenario import AGREEMENTS_FILE
from services.processor.domain import usage
from services.processor.domain.simulate import Simulation
from services.processor.domain.step import Decision, Policy

OCT = datetime(2026, 10, 1, tzinfo=UTC)
# The processor's clock in these tests: after the October scenario, within its bounds.
NOW = datetime(2026, 11, 23, tzinfo=UTC)


def agreements() -> dict[str, Agreement]:
    """The demo agreements by licensee."""
    return {a.licensee_id: a for a in load_agreements(AGREEMENTS_FILE)}


def call(
    n: int,
    at: datetime,
    licensee: str = "pebble",
    app: str = "pebble-app",
    records: int = 10,
    org: str = "reader-1",
    org_type: str = "commercial",
    source: str = "gw",
) -> ApiCall:
    """One API call."""
    return ApiCall(
        event_id=f"{licensee}-{n}",
        source=source,
        time=at,
        licensee_id=licensee,
        app_id=app,
        endpoint="/x",
        method="GET",
        status=200,
        records=records,
        bytes=1,
        org_id=org,
        org_type=org_type,
    )


def with_limits(agreement: Agreement, **limits: Any) -> Agreement:
    """The agreement with some limits changed."""
    return replace(agreement, limits=replace(agreement.limits, **limits))


@dataclass
class Outcome:
    """A decision as the stream shows it: alerts as their CloudEvents envelopes."""

    kind: str
    billed: bool  # the call joined its licensee's open usage buckets
    alerts: list[dict[str, Any]]
    reason: str
    decision: Decision


class Feed:
    """Feeds calls to one in-memory partition, exactly as the worker feeds its quix state."""

    def __init__(
        self,
        licensee: str = "pebble",
        agreement: Agreement | None = None,
        policy: Policy | None = None,
        now: datetime = NOW,
    ) -> None:
        self.licensee = licensee
        self.simulation = Simulation(lambda _l, _t: agreement, now, policy or Policy())

    def send(self, c: ApiCall) -> Outcome:
        """Decide one call and apply what was decided."""
        d = self.simulation.feed(c)
        billed = any(w.key.startswith(usage.BUCKET_PREFIX) for w in d.writes)
        return Outcome(d.kind, billed, [a.to_cloudevent() for a in d.alerts], d.reason, d)

    def many(self, calls: list[ApiCall]) -> list[Outcome]:
        """Feed calls in order."""
        return [self.send(c) for c in calls]

    def month(self, key: str, app: str | None = None) -> tuple[int, int]:
        """(calls, records) the state holds for month `key` (and `app`), (0, 0) if none."""
        state = self.simulation.partitions[0].licensee(self.licensee)
        value = state.get(f"m:{key}")
        if value is not None and app is not None:
            value = value[2].get(app)
        return (0, 0) if value is None else (int(value[0]), int(value[1]))

    def open_usage(self) -> dict[str, list[int]]:
        """The licensee's open usage buckets: bucket id -> [calls, records, first ms, last ms, ...]."""
        state = self.simulation.partitions[0].licensee(self.licensee)
        return {b: state.get(usage.BUCKET_PREFIX + b) for b in state.get(usage.OPEN_KEY) or []}


def rules_fired(outcomes: list[Outcome]) -> list[tuple[str, str, str]]:
    """(rule, severity, subject) of every alert in `outcomes`, in order."""
    return [
        (a["data"]["rule"], a["data"]["severity"], a["data"]["subject"]) for o in outcomes for a in o.alerts
    ]


def minutes(n: int) -> timedelta:
    """n minutes."""
    return timedelta(minutes=n)
