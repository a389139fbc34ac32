"""One micro-batch of input messages: decode, group per licensee, apply the domain, plan writes and sends.

No I/O here: `plan` says which table values to write (one per licensee and input partition touched by
the batch) and which records to send, in input order; the agent performs them. Writing a licensee's
state once per batch instead of once per event is what makes the processor fast; it stays exact
because that one value carries `last_offset` of every event folded into it (see README).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from services.core.agreements import Agreement
from services.core.events import ApiCall, dumps, loads
from services.processor.codec import Invalid, Source, dead_letter, decode_call
from services.processor.domain.state import LicenseeState
from services.processor.domain.step import REPLAYED, Outcome, Policy, Position, apply

log = logging.getLogger(__name__)
INVALID = "invalid"


class Message(Protocol):
    """What the batch reads of a Kafka message (faust's Message has these)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: float


@dataclass(frozen=True, slots=True)
class Topics:
    """Where the outputs go."""

    alerts: str
    billable: str
    dlq: str


@dataclass(frozen=True, slots=True)
class Send:
    """One record to produce."""

    topic: str
    key: bytes | None
    value: bytes


@dataclass(frozen=True, slots=True)
class Write:
    """One table value to store, with the changelog partition it belongs to."""

    licensee_id: str
    partition: int
    value: bytes


@dataclass(slots=True)
class Applied:
    """One call and what the domain made of it."""

    call: ApiCall
    outcome: Outcome
    timestamp: float | None


@dataclass(slots=True)
class Plan:
    """Everything one batch must write and send, plus what the metrics need."""

    writes: list[Write] = field(default_factory=list)
    sends: list[Send] = field(default_factory=list)
    outcomes: dict[str, int] = field(default_factory=dict)
    applied: list[Applied] = field(default_factory=list)
    states: dict[str, LicenseeState] = field(default_factory=dict)

    def count(self, kind: str) -> None:
        """Count one input event of outcome `kind`."""
        self.outcomes[kind] = self.outcomes.get(kind, 0) + 1


class StateCache:
    """Decoded states, each valid while the table still holds the very bytes it was saved as."""

    def __init__(self, table: MutableMapping[str, bytes]) -> None:
        self.table = table
        self._decoded: dict[str, tuple[bytes, LicenseeState]] = {}

    def get(self, licensee_id: str) -> LicenseeState:
        """The licensee's current state (a fresh one if the table has none)."""
        stored = self.table.get(licensee_id)
        if stored is None:
            return LicenseeState(licensee_id)
        cached = self._decoded.get(licensee_id)
        # Identity, not equality: a value recovered from the changelog is a new object.
        if cached is not None and cached[0] is stored:
            return cached[1]
        return LicenseeState.from_dict(loads(stored))

    def encode(self, state: LicenseeState) -> bytes:
        """The bytes to store for `state`; remembered so the next batch skips decoding them."""
        value = dumps(state.to_dict())
        self._decoded[state.licensee_id] = (value, state)
        return value

    def forget(self) -> None:
        """Drop every decoded state (after a failure they may be half-changed)."""
        self._decoded.clear()


class Planner:
    """Turns a batch of messages into a Plan, using the licensees' states and agreements."""

    def __init__(
        self,
        cache: StateCache,
        agreements: Callable[[str], Agreement | None],
        policy: Policy,
        topics: Topics,
    ) -> None:
        self.cache = cache
        self.agreements = agreements
        self.policy = policy
        self.topics = topics

    def plan(self, messages: Iterable[Message], now: datetime) -> Plan:
        """Apply every message, in order per licensee; one Write per licensee and partition touched."""
        plan = Plan()
        groups: dict[tuple[int, str], list[tuple[ApiCall, Source, bytes, float | None]]] = {}
        for message in messages:
            source = Source(message.topic, message.partition, message.offset, message.key)
            decoded = _decode(message)
            if isinstance(decoded, Invalid):
                self._invalid(plan, source, decoded, message.value, now)
                continue
            group = groups.setdefault((source.partition, decoded.licensee_id), [])
            group.append((decoded, source, message.value or b"", message.timestamp))
        try:
            for (partition, licensee_id), items in groups.items():
                self._apply_group(plan, partition, licensee_id, items, now)
        except BaseException:
            self.cache.forget()
            raise
        return plan

    def _apply_group(
        self,
        plan: Plan,
        partition: int,
        licensee_id: str,
        items: list[tuple[ApiCall, Source, bytes, float | None]],
        now: datetime,
    ) -> None:
        state = plan.states.get(licensee_id) or self.cache.get(licensee_id)
        plan.states[licensee_id] = state
        agreement = self.agreements(licensee_id)
        changed = False
        for call, source, payload, timestamp in items:
            outcome = apply(state, call, Position(partition, source.offset), agreement, now, self.policy)
            changed = changed or outcome.kind != REPLAYED
            plan.count(outcome.kind)
            plan.applied.append(Applied(call, outcome, timestamp))
            self._outputs(plan, call, source, payload, outcome, now)
        if changed:
            plan.writes.append(Write(licensee_id, partition, self.cache.encode(state)))

    def _outputs(
        self, plan: Plan, call: ApiCall, source: Source, payload: bytes, outcome: Outcome, now: datetime
    ) -> None:
        key = call.licensee_id.encode()
        if outcome.usage is not None:
            plan.sends.append(Send(self.topics.billable, key, dumps(outcome.usage.to_cloudevent())))
        for envelope in outcome.alerts:
            data = envelope["data"]
            log.info("alert %s %s %s", data["rule"], call.licensee_id, data["subject"])
            plan.sends.append(Send(self.topics.alerts, key, dumps(envelope)))
        if outcome.reason:
            record = dead_letter(source, outcome.reason, payload, now)
            plan.sends.append(Send(self.topics.dlq, source.key, record))

    def _invalid(
        self, plan: Plan, source: Source, invalid: Invalid, payload: bytes | None, now: datetime
    ) -> None:
        log.warning(
            "dead-lettering %s[%d]@%d: %s %s",
            source.topic,
            source.partition,
            source.offset,
            invalid.reason,
            invalid.problems[:3],
        )
        record = dead_letter(source, invalid.reason, payload, now, invalid.problems)
        plan.sends.append(Send(self.topics.dlq, source.key, record))
        plan.count(INVALID)


def _decode(message: Message) -> ApiCall | Invalid:
    decoded = decode_call(message.value)
    if isinstance(decoded, ApiCall) and (message.key or b"") != decoded.licensee_id.encode():
        # State lives in the partition of the licensee's key; a call keyed otherwise would split it.
        return Invalid(
            "invalid: key is not the licensee_id",
            [{"field": "(key)", "reason": "must equal data.licensee_id"}],
        )
    return decoded
