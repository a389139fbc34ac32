"""Micro-batches give the per-event results, write each licensee once per batch, and replay cleanly."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from processor_helpers import NOW, OCT, agreements, call

from services.core.events import ApiCall, dumps, loads
from services.demo.scenario import demo_calls
from services.processor.batch import INVALID, Plan, Planner, StateCache, Topics
from services.processor.domain.state import LicenseeState
from services.processor.domain.step import COUNTED, REPLAYED, Policy, Position, apply

TOPICS = Topics("alerts", "billable", "dlq")
PARTITIONS = 6


@dataclass
class Msg:
    """A stand-in for faust's Message."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: float = 1.0


def as_messages(calls: list[ApiCall], raw: list[tuple[bytes, bytes]] | None = None) -> list[Msg]:
    """Calls keyed by licensee, partitioned by a stable hash, with per-partition offsets."""
    offsets = [0] * PARTITIONS
    found = []
    for key, value in [(c.licensee_id.encode(), dumps(c.to_cloudevent())) for c in calls] + (raw or []):
        partition = zlib.crc32(key) % PARTITIONS
        found.append(Msg("in", partition, offsets[partition], key, value))
        offsets[partition] += 1
    return found


class Worker:
    """A planner over a dict 'table', performing the writes the way the agent does."""

    def __init__(self) -> None:
        self.table: dict[str, bytes] = {}
        self.cache = StateCache(self.table)
        self.planner = Planner(self.cache, agreements().get, Policy(), TOPICS)

    def run(self, messages: list[Msg], size: int) -> list[Plan]:
        """Plan and apply `messages` in batches of `size`."""
        plans = []
        for start in range(0, len(messages), size):
            plan = self.planner.plan(messages[start : start + size], NOW)
            for write in plan.writes:
                self.table[write.licensee_id] = write.value
            plans.append(plan)
        return plans


def sent(plans: list[Plan], topic: str) -> list[dict[str, Any]]:
    """Every record a list of plans sends to `topic`."""
    return [loads(s.value) for p in plans for s in p.sends if s.topic == topic]


def per_event(messages: list[Msg]) -> tuple[list[str], list[str], dict[str, LicenseeState]]:
    """Alert ids, usage ids and states from applying one event at a time (the reference)."""
    known, states = agreements(), {}
    alerts: list[str] = []
    usage: list[str] = []
    for m in messages:
        parsed = ApiCall.from_cloudevent(loads(m.value))  # type: ignore[arg-type]
        state = states.setdefault(parsed.licensee_id, LicenseeState(parsed.licensee_id))
        at = Position(m.partition, m.offset)
        outcome = apply(state, parsed, at, known.get(parsed.licensee_id), NOW, Policy())
        alerts += [a["data"]["alert_id"] for a in outcome.alerts]
        usage += [outcome.usage.usage_id] if outcome.usage else []
    return alerts, usage, states


@pytest.mark.parametrize("size", [1, 7, 100, 1000, 5000])
def test_any_batch_size_gives_the_per_event_alerts_usage_and_state(size: int) -> None:
    messages = as_messages(demo_calls())
    alerts, usage, states = per_event(messages)
    worker = Worker()
    plans = worker.run(messages, size)
    assert sorted(a["data"]["alert_id"] for a in sent(plans, "alerts")) == sorted(alerts)
    assert sorted(b["data"]["usage_id"] for b in sent(plans, "billable")) == sorted(usage)
    for licensee, state in states.items():
        assert LicenseeState.from_dict(loads(worker.table[licensee])) == state


def test_a_batch_writes_each_licensee_once_per_partition() -> None:
    messages = as_messages([call(i, OCT, licensee) for i in range(50) for licensee in ("pebble", "omnisoft")])
    plan = Worker().run(messages, 1000)[0]
    assert sorted(w.licensee_id for w in plan.writes) == ["omnisoft", "pebble"]
    assert plan.outcomes == {COUNTED: 100}


def test_a_batch_read_again_after_its_state_was_written_is_replayed_with_the_same_outputs() -> None:
    # Within the dedupe horizon: a replayed key that was pruned meanwhile would be taken for a late one.
    calls = [c for c in demo_calls() if c.time < OCT + timedelta(days=6)]
    messages = as_messages(calls)
    worker = Worker()
    first = worker.run(messages, 300)
    again = worker.run(messages, 500)
    assert all(p.writes == [] for p in again)
    assert sum(p.outcomes.get(REPLAYED, 0) for p in again) == len(calls) > 300
    usage = sorted(b["data"]["usage_id"] for b in sent(first, "billable"))
    assert sorted(b["data"]["usage_id"] for b in sent(again, "billable")) == usage
    assert sorted(a["id"] for a in sent(again, "alerts")) == sorted(a["id"] for a in sent(first, "alerts"))


def test_invalid_messages_go_to_the_dead_letters_and_the_rest_of_the_batch_is_applied() -> None:
    bad = [(b"pebble", b"{nope"), (b"omnisoft", dumps(call(1, OCT, "pebble").to_cloudevent()))]
    plan = Worker().run(as_messages([call(2, OCT)], bad), 10)[0]
    assert plan.outcomes == {COUNTED: 1, INVALID: 2}
    reasons = sorted(loads(s.value)["reason"] for s in plan.sends if s.topic == "dlq")
    assert reasons == ["invalid: key is not the licensee_id", "invalid: not JSON"]


def test_the_cache_serves_the_written_state_and_decodes_a_recovered_value() -> None:
    worker = Worker()
    worker.run(as_messages([call(1, OCT)]), 10)
    cached = worker.cache.get("pebble")
    assert worker.cache.get("pebble") is cached
    worker.table["pebble"] = bytes(bytearray(worker.table["pebble"]))  # what a changelog recovery would store
    recovered = worker.cache.get("pebble")
    assert recovered is not cached and recovered == cached


def test_a_failing_batch_forgets_the_cached_states() -> None:
    worker = Worker()
    worker.run(as_messages([call(1, OCT)]), 10)
    cached = worker.cache.get("pebble")
    worker.planner.agreements = lambda _: 1 / 0  # type: ignore[assignment,return-value]
    with pytest.raises(ZeroDivisionError):
        worker.planner.plan(as_messages([call(2, OCT)]), NOW)
    assert worker.cache.get("pebble") is not cached
