"""The whole domain over a sequence of calls, in memory: the expectation tests and benchmarks compare
a real run with (alert ids are deterministic, so the same calls give the same alert ids; billable usage
is compared per licensee and bucket, as the flushed deltas add up)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from services.core.agreements import Agreement
from services.core.events import ApiCall
from services.processor.domain import usage
from services.processor.domain.step import COUNTED, Decision, Policy, decide
from services.processor.domain.store import InMemoryPartition
from services.processor.domain.versions import Versions


@dataclass
class Simulation:
    """In-memory partitions fed call by call, exactly as the worker feeds its quix state."""

    agreements: Callable[[str, datetime], Agreement | None]
    now: datetime
    policy: Policy = field(default_factory=Policy)
    partitions: dict[int, InMemoryPartition] = field(default_factory=dict)
    alert_ids: set[str] = field(default_factory=set)
    # (licensee, usage bucket) -> [calls, records] billed: what the flushed deltas add up to.
    billed: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    outcomes: Counter[str] = field(default_factory=Counter)
    records: Counter[str] = field(default_factory=Counter)

    def feed(self, call: ApiCall, partition: int = 0) -> Decision:
        """Decide one call and apply what was decided."""
        part = self.partitions.setdefault(partition, InMemoryPartition())
        state = part.licensee(call.licensee_id)
        agreement = self.agreements(call.licensee_id, call.time)
        decision = decide(call, state, part.stream_time(), agreement, self.now, self.policy)
        if decision.stream_time is not None:
            part.advance(decision.stream_time)
        if not decision.reason:
            state.apply(decision.writes, decision.event_time)
        self.outcomes[decision.kind] += 1
        if decision.kind == COUNTED:
            held = self.billed.setdefault((call.licensee_id, usage.bucket_id(call, agreement)), [0, 0])
            held[0] += 1
            held[1] += call.records
            self.records[call.licensee_id] += call.records
        self.alert_ids |= {a.alert_id for a in decision.alerts}
        return decision

    def run(self, calls: Iterable[ApiCall], partition_of: Callable[[str], int] = lambda _: 0) -> Simulation:
        """Feed every call, each to the partition of its licensee."""
        for call in calls:
            self.feed(call, partition_of(call.licensee_id))
        return self

    def billed_calls(self) -> int:
        """Calls billed over every licensee and bucket."""
        return sum(calls for calls, _ in self.billed.values())


def by_licensee(agreements: Iterable[Agreement]) -> Callable[[str, datetime], Agreement | None]:
    """An agreements lookup like the worker's, over a fixed list (the version in force at the time)."""
    versions = Versions()
    for agreement in agreements:
        versions.put(agreement)
    return versions.in_force
