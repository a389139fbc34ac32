"""The per-record edge on the in-memory state: dead letters, the poison-pill guard, exact counters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from processor_helpers import NOW, OCT, agreements, call

from services.core.clock import FixedClock
from services.core.events import dumps, loads
from services.processor.codec import Source, check_key, read_message
from services.processor.domain import usage
from services.processor.domain.step import Policy
from services.processor.domain.store import InMemoryPartition
from services.processor.handler import Emit, Handler, Topics
from services.processor.metrics import ProcessorMetrics
from services.processor.serdes import event_timestamp
from services.processor.tally import Tally
from services.processor.violations import ViolationsView

TOPICS = Topics("alerts", "billable", "dlq")


class Edge:
    """A handler over one in-memory partition, with the tally bound to a checkpoint we control."""

    def __init__(self, agreement: Any = None, failures: int = 0) -> None:
        self.partition = InMemoryPartition()
        self.metrics = ProcessorMetrics(10)
        self.checkpoint: object = object()
        self.tally = Tally(self.metrics, lambda: self.checkpoint)
        self.failures = failures
        known = agreement if agreement is not None else agreements()["pebble"]
        self.handler = Handler(
            TOPICS, Policy(), self._agreement(known), FixedClock(NOW), self.metrics,
            lambda *inc: self.tally.add(self.checkpoint, *inc),
        )  # fmt: skip
        self.offset = 0

    def _agreement(self, known: Any) -> Any:
        def lookup(licensee: str, at: datetime) -> Any:
            if self.failures:
                self.failures -= 1
                raise ZeroDivisionError("boom")
            return known

        return lookup

    def send(self, payload: bytes, key: bytes | None = b"pebble") -> list[Emit]:
        """One record at the next offset."""
        self.offset += 1
        incoming = check_key(read_message(payload), key)
        licensee = self.partition.licensee(key.decode() if key else "")
        stamp = event_timestamp(FixedClock(NOW), 300_000)(incoming, None, 0, None) / 1000
        return self.handler.handle(
            incoming, Source("calls", 0, self.offset, key), stamp, licensee, self.partition
        )

    def counter(self, name: str, **labels: str) -> float:
        value = self.metrics.registry.get_sample_value(name, labels)
        return value or 0.0


def _payload(n: int = 1, at: datetime = OCT, **fields: Any) -> bytes:
    return dumps(call(n, at, **fields).to_cloudevent())


def test_a_counted_call_emits_nothing_itself_but_joins_its_licensees_open_usage() -> None:
    edge = Edge()
    assert edge.send(_payload()) == []
    assert edge.partition.open == {"pebble": NOW.timestamp()}
    assert _open_calls(edge) == 1


def _open_calls(edge: Edge) -> int:
    state = edge.partition.licensee("pebble")
    return sum(state.get(usage.BUCKET_PREFIX + b)[0] for b in state.get(usage.OPEN_KEY) or [])


@pytest.mark.parametrize(
    ("payload", "key", "reason"),
    [
        (b"{not json", b"pebble", "invalid: not JSON"),
        (b"", b"pebble", "invalid: empty message"),
        (_payload(), b"someone-else", "invalid: key is not the licensee_id"),
        (_payload(), None, "invalid: key is not the licensee_id"),
        (_payload(at=datetime(1, 1, 1, tzinfo=UTC)), b"pebble", "out_of_bounds"),
        (_payload(at=datetime(2100, 1, 1, tzinfo=UTC)), b"pebble", "out_of_bounds"),
    ],
)
def test_a_record_the_processor_cannot_count_goes_to_the_dlq_with_its_reason_and_origin(
    payload: bytes, key: bytes | None, reason: str
) -> None:
    edge = Edge()
    out = edge.send(payload, key)
    assert [e.topic for e in out] == ["dlq"]
    record = loads(out[0].value)
    assert record["reason"].startswith(reason)
    assert (record["topic"], record["partition"], record["offset"]) == ("calls", 0, 1)
    assert edge.partition.values == {}  # nothing of it reached the state


def test_a_record_whose_decision_raises_twice_is_dead_lettered_and_the_next_one_counts() -> None:
    edge = Edge(failures=2)
    out = edge.send(_payload(1))
    assert [e.topic for e in out] == ["dlq"]
    assert loads(out[0].value)["reason"] == "poison: ZeroDivisionError: boom"
    assert edge.partition.values == {}
    assert edge.send(_payload(2)) == [] and _open_calls(edge) == 1


def test_a_decision_that_raises_once_is_retried_and_counted() -> None:
    edge = Edge(failures=1)
    assert edge.send(_payload(1)) == [] and _open_calls(edge) == 1


def test_counters_move_only_once_the_checkpoint_that_made_them_has_committed() -> None:
    edge = Edge()
    edge.send(_payload(1))
    edge.send(_payload(1))
    edge.tally.settle()
    assert edge.counter("tollgate_usage_calls_total", licensee="pebble") == 0
    edge.checkpoint = object()  # quix opened a new checkpoint: the previous one committed
    edge.tally.settle()
    assert edge.counter("tollgate_usage_calls_total", licensee="pebble") == 1
    assert edge.counter("tollgate_processor_events_total", outcome="duplicate") == 1


def test_an_alert_is_emitted_once_for_its_window() -> None:
    edge = Edge(agreements()["omnisoft"])
    out = edge.send(_payload(1, licensee="omnisoft", app="omni-shadow"), b"omnisoft")
    assert [loads(e.value)["data"]["rule"] for e in out if e.topic == "alerts"] == ["app.unregistered"]
    again = edge.send(_payload(2, licensee="omnisoft", app="omni-shadow"), b"omnisoft")
    assert again == []


def _alert_record(rule: str, month: str) -> bytes:
    data = {"licensee_id": "omnisoft", "rule": rule, "window_start": f"{month}-01T00:00:00Z"}
    return dumps({"data": data})


def test_active_violations_show_the_rules_of_the_latest_alerted_month_from_the_alerts_topic() -> None:
    metrics = ProcessorMetrics(10)
    view = ViolationsView(lambda: None, "alerts", metrics)
    for rule, month in [("volume.breach", "2026-10"), ("app.unregistered", "2026-10"),
                        ("app.unregistered", "2026-11"), ("volume.breach", "2026-09"), ("x", "2026-11")]:
        view._apply(b"omnisoft", _alert_record(rule, month))
    view._apply(b"omnisoft", b"not json")

    def active(rule: str) -> float | None:
        return metrics.registry.get_sample_value(
            "tollgate_active_violation", {"licensee": "omnisoft", "rule": rule}
        )

    assert (active("volume.breach"), active("app.unregistered")) == (0, 1)


@pytest.mark.parametrize(
    ("at", "kafka_ms", "expected_ms"),
    [
        (OCT, 5, int(OCT.timestamp() * 1000)),
        (datetime(1, 1, 1, tzinfo=UTC), 5, 0),
        (datetime(2100, 1, 1, tzinfo=UTC), 5, int((NOW + timedelta(minutes=5)).timestamp() * 1000)),
    ],
)
def test_the_state_timestamp_is_the_event_time_clamped_to_the_clock_plus_the_lead(
    at: datetime, kafka_ms: int, expected_ms: int
) -> None:
    extract = event_timestamp(FixedClock(NOW), 300_000)
    assert extract(read_message(_payload(at=at)), None, kafka_ms, None) == expected_ms


def test_an_unreadable_record_keeps_its_kafka_timestamp_within_the_bounds() -> None:
    extract = event_timestamp(FixedClock(NOW), 300_000)
    far = int(datetime(2200, 1, 1, tzinfo=UTC).timestamp() * 1000)
    assert extract(read_message(b"x"), None, 1234, None) == 1234
    lead = int((NOW + timedelta(minutes=5)).timestamp() * 1000)
    assert extract(read_message(b"x"), None, far, None) == lead


def test_the_first_record_of_a_new_checkpoint_applies_the_committed_ones_counters() -> None:
    edge = Edge()
    edge.send(_payload(1))
    assert edge.counter("tollgate_usage_calls_total", licensee="pebble") == 0
    edge.checkpoint = object()
    edge.send(_payload(2))  # no scrape in between
    assert edge.counter("tollgate_usage_calls_total", licensee="pebble") == 1
