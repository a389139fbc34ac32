"""The per-record edge: decode, ask the domain, write the state it decided, say what to send.

Engine-agnostic: `app.py` hands it quix-streams' state for the record's licensee and partition; tests
hand it the in-memory sides. Delivery: the outputs returned here are produced inside the checkpoint's
Kafka transaction, with the state changelog and the input offsets, so each is delivered exactly once
to `read_committed` readers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from services.core.agreements import Agreement
from services.core.clock import Clock
from services.core.events import ApiCall, dumps
from services.processor.codec import Incoming, Invalid, Source, dead_letter
from services.processor.domain.groups import group_call
from services.processor.domain.step import COUNTED, Decision, Policy, decide
from services.processor.domain.store import Write
from services.processor.errors import PoisonRecord
from services.processor.metrics import ProcessorMetrics

log = logging.getLogger(__name__)
INVALID, POISON = "invalid", "poison"


@dataclass(frozen=True, slots=True)
class Topics:
    """Where the outputs go."""

    alerts: str
    billable: str
    dlq: str
    # The group stage's internal topic (group_stage.py); "" when no group stage runs.
    groups: str = ""


@dataclass(frozen=True, slots=True)
class Emit:
    """One record to produce in the checkpoint's transaction."""

    topic: str
    key: bytes | None
    value: bytes


class LicenseeStore(Protocol):
    """A licensee's keyed state: read by the domain, then written with the decision's writes."""

    def get(self, key: str) -> Any: ...

    def apply(self, writes: list[Write], event_time: float) -> None: ...


class PartitionStore(Protocol):
    """The input partition's stream time."""

    def stream_time(self) -> float | None: ...

    def advance(self, event_time: float) -> None: ...

    def opened(self, licensee: str, now: float) -> None: ...


class Handler:
    """Turns one input record into state writes and outputs."""

    def __init__(
        self,
        topics: Topics,
        policy: Policy,
        agreements: Callable[[str, datetime], Agreement | None],
        clock: Clock,
        metrics: ProcessorMetrics,
        tally: Callable[..., None],
    ) -> None:
        self.topics, self.policy, self.agreements = topics, policy, agreements
        self.clock, self.metrics, self.tally = clock, metrics, tally

    def handle(
        self, incoming: Incoming, source: Source, record_time: float, licensee: Any, partition: Any
    ) -> list[Emit]:
        """Handle one record; `record_time` is the timestamp quix stamps the state writes with."""
        now = self.clock.now()
        call = incoming.call
        if isinstance(call, Invalid):
            return self._invalid(source, call, incoming.payload, now)
        if not isinstance(call, ApiCall):
            return []  # a tick (ticker.py): the pipeline answers those before the handler
        try:
            decision, agreement, out = self._plan(call, incoming.payload, source, licensee, partition, now)
        except PoisonRecord as exc:
            return self._poison(source, call, incoming.payload, exc, now)
        # Only now, with the whole decision and its outputs built, does the record touch the state.
        if decision.stream_time is not None:
            partition.advance(decision.stream_time)
        if not decision.reason:
            # Dead-lettered calls never touch the licensee's state (nor quix's event-time high-water).
            licensee.apply(decision.writes, record_time)
        if decision.opened_usage:
            partition.opened(call.licensee_id, now.timestamp())
        self._observe(call, decision, agreement, source.partition, now)
        return out

    def _plan(
        self,
        call: ApiCall,
        payload: bytes,
        source: Source,
        licensee: LicenseeStore,
        partition: PartitionStore,
        now: datetime,
    ) -> tuple[Decision, Agreement | None, list[Emit]]:
        """The decision and its outputs, tried twice: a record that raises both times is a poison pill."""
        failure: Exception | None = None
        for _ in range(2):
            try:
                agreement = self.agreements(call.licensee_id, call.time)
                decision = decide(
                    call, licensee, partition.stream_time(), agreement, now, self.policy, source.offset
                )
                if decision.reason:
                    return decision, agreement, [self._dead_letter(source, decision.reason, payload, now)]
                return decision, agreement, self._outputs(call, decision, agreement)
            except Exception as exc:  # the guard: no record may stop metering for everyone
                failure = exc
        raise PoisonRecord(f"{type(failure).__name__}: {failure}") from failure

    def _outputs(self, call: ApiCall, decision: Decision, agreement: Agreement | None) -> list[Emit]:
        # Billable usage leaves aggregated, when its bucket is flushed (flush.py), not per call.
        key = call.licensee_id.encode()
        out = [Emit(self.topics.alerts, key, dumps(alert.to_cloudevent())) for alert in decision.alerts]
        if decision.kind == COUNTED and self.topics.groups:
            out += group_emits(self.topics.groups, call, agreement)
        return out

    def _observe(
        self, call: ApiCall, decision: Decision, agreement: Agreement | None, partition: int, now: datetime
    ) -> None:
        if decision.kind != COUNTED or decision.counts is None:
            self.tally("outcome", decision.kind)
            return
        # One increment per counted call (its outcome, calls, records, event lag, latest counts).
        lag = max(0.0, now.timestamp() - decision.event_time)
        self.tally("counted", call.licensee_id, call.records, lag, (agreement, decision.counts, partition))
        for alert in decision.alerts:
            log.info("alert %s %s %s", alert.rule, call.licensee_id, alert.subject)
            self.tally("fired", call.licensee_id, alert.rule, alert.severity)

    def _invalid(self, source: Source, invalid: Invalid, payload: bytes, now: datetime) -> list[Emit]:
        log.warning(
            "dead-lettering %s[%d]@%d: %s %s",
            source.topic, source.partition, source.offset, invalid.reason, invalid.problems[:3],
        )  # fmt: skip
        self.tally("outcome", INVALID)
        return [self._dead_letter(source, invalid.reason, payload, now, invalid.problems)]

    def _poison(
        self, source: Source, call: ApiCall, payload: bytes, exc: PoisonRecord, now: datetime
    ) -> list[Emit]:
        log.error(
            "dead-lettering poison record %s[%d]@%d of %s: %s",
            source.topic, source.partition, source.offset, call.licensee_id, exc,
        )  # fmt: skip
        self.tally("outcome", POISON)
        return [self._dead_letter(source, f"poison: {exc}"[:500], payload, now)]

    def _dead_letter(
        self,
        source: Source,
        reason: str,
        payload: bytes,
        now: datetime,
        problems: list[dict[str, str]] | None = None,
    ) -> Emit:
        return Emit(self.topics.dlq, source.key, dead_letter(source, reason, payload, now, problems))


def group_emits(topic: str, call: ApiCall, agreement: Agreement | None) -> list[Emit]:
    """A group member's counted call, for its group's stage (keyed by the group); none without a group."""
    found = group_call(call, agreement)
    if found is None:
        return []
    return [Emit(topic, found.group_id.encode(), dumps(found.to_dict()))]
