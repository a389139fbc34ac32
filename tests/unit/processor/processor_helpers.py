"""Builders shared by the processor's unit tests."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from services.core.agreements import Agreement, load_agreements
from services.core.events import ApiCall
from services.demo.scenario import AGREEMENTS_FILE
from services.processor.domain.state import LicenseeState
from services.processor.domain.step import Outcome, Policy, Position, apply

OCT = datetime(2026, 10, 1, tzinfo=UTC)
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


class Feed:
    """Applies calls to one state at increasing offsets of one partition, like the stream would."""

    def __init__(
        self,
        licensee: str = "pebble",
        agreement: Agreement | None = None,
        policy: Policy | None = None,
        partition: int = 0,
    ) -> None:
        self.state = LicenseeState(licensee)
        self.agreement = agreement
        self.policy = policy or Policy()
        self.partition = partition
        self.offset = -1

    def send(self, c: ApiCall, offset: int | None = None) -> Outcome:
        """Apply at the next offset (or at `offset`, to model a replay)."""
        if offset is None:
            self.offset += 1
            offset = self.offset
        return apply(self.state, c, Position(self.partition, offset), self.agreement, NOW, self.policy)

    def many(self, calls: list[ApiCall]) -> list[Outcome]:
        """Apply calls in order."""
        return [self.send(c) for c in calls]


def rules_fired(outcomes: list[Outcome]) -> list[tuple[str, str, str]]:
    """(rule, severity, subject) of every alert in `outcomes`, in order."""
    return [
        (a["data"]["rule"], a["data"]["severity"], a["data"]["subject"]) for o in outcomes for a in o.alerts
    ]


def minutes(n: int) -> timedelta:
    """n minutes."""
    return timedelta(minutes=n)
