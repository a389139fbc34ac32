"""Hostile event times on a real worker (issue 17): none crashes it, out-of-bounds ones are dead-lettered,
and valid calls after them are still billed."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import OFFSET_BEGINNING, TopicPartition
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from processor_support import (
    Topics,
    Worker,
    Workers,
    calls_of,
    clone_agreement,
    committed_reader,
    demo_agreements,
    produce,
    publish,
)

from services.core.events import parse_time
from services.core.schemas import API_CALL_TYPE, problems
from services.core.security import PLAINTEXT

pytestmark = pytest.mark.integration

LICENSEE = "hostile"
MAX_AGE, MAX_LEAD = timedelta(days=400), timedelta(seconds=300)
# Times this close to a bound may fall either side of it: the worker's clock is not the test's.
EDGE = timedelta(minutes=2)


def _event(time_text: str, tag: str = "x") -> dict[str, Any]:
    event_id = f"{tag}-{uuid.uuid4().hex[:12]}"
    return {
        "specversion": "1.0", "id": event_id, "source": "gateway-hostile",
        "type": "io.tollgate.api.call.v1", "time": time_text, "datacontenttype": "application/json",
        "data": {"licensee_id": LICENSEE, "app_id": "pebble-app", "endpoint": "/2/users", "method": "GET",
                 "status": 200, "records": 1, "bytes": 10, "requester": _own_org(event_id)},
    }  # fmt: skip


def _own_org(event_id: str) -> dict[str, str]:
    # Billable usage is aggregated per requester org (among others): an org of its own makes each
    # call its own bucket, so the deltas say which calls were billed.
    return {"org_id": event_id, "org_type": "commercial"}


def _send(broker: str, topics: Topics, events: list[dict[str, Any]]) -> None:
    """Written straight to the input topic, as a direct producer would: ingest's checks are skipped."""
    produce(broker, topics.input, [], [(LICENSEE.encode(), orjson.dumps(e)) for e in events])


class Outputs:
    """The worker's billable and DLQ records so far, by input event id (read_committed)."""

    def __init__(self, broker: str, topics: Topics) -> None:
        self.consumer = committed_reader(broker, PLAINTEXT)
        self.consumer.assign(
            [TopicPartition(t, p, OFFSET_BEGINNING) for t in (topics.billable, topics.dlq) for p in range(6)]
        )
        self.billable_topic = topics.billable
        self.billed: dict[str, int] = {}
        self.dead: dict[str, list[str]] = {}

    def poll(self) -> None:
        for message in self.consumer.consume(1000, timeout=0.2):
            if message.error() is not None:
                continue  # end of a partition
            record = orjson.loads(message.value())
            if message.topic() == self.billable_topic:
                event_id = record["data"]["requester"]["org_id"]  # see _own_org
                self.billed[event_id] = self.billed.get(event_id, 0) + record["data"]["calls"]
            else:
                event_id = orjson.loads(record["payload"])["id"]
                self.dead.setdefault(event_id, []).append(record["reason"])

    def wait_billed(self, event_id: str, worker: Worker, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while event_id not in self.billed:
            assert worker.process.poll() is None, f"the worker exited:\n{worker.log()[-3000:]}"
            assert time.monotonic() < deadline, f"{event_id} not billed within {timeout:.0f}s"
            self.poll()

    def close(self) -> None:
        self.consumer.close()


@pytest.fixture
def running(broker: str, topics: Topics, tmp_path: Path) -> Iterator[tuple[Worker, Outputs]]:
    """One worker with the agreement of `hostile`, and a reader of its outputs."""
    pebble = next(a for a in demo_agreements() if a.licensee_id == "pebble")
    publish(broker, topics, [clone_agreement(pebble, LICENSEE, calls_per_month=10**6)])
    workers = Workers(broker, topics, tmp_path)
    worker = workers.start("solo")
    outputs = Outputs(broker, topics)
    try:
        worker.wait_ready()
        yield worker, outputs
    finally:
        outputs.close()
        workers.stop_all()


def _valid_now() -> str:
    return (datetime.now(UTC) - timedelta(minutes=1)).isoformat().replace("+00:00", "Z")


@st.composite
def event_times(draw: st.DrawFn) -> str:
    """RFC 3339 times the schema accepts: any year 0001-9999, any fraction, Z or any offset to ±23:59."""
    year, month = draw(st.integers(1, 9999)), draw(st.integers(1, 12))
    day = draw(st.integers(1, 28 if month == 2 else 30 if month in (4, 6, 9, 11) else 31))
    clock = f"{draw(st.integers(0, 23)):02d}:{draw(st.integers(0, 59)):02d}:{draw(st.integers(0, 59)):02d}"
    fraction = draw(st.sampled_from(["", ".5", ".123456", ".000000001"]))
    sign, hours, minutes = draw(st.sampled_from("+-")), draw(st.integers(0, 23)), draw(st.integers(0, 59))
    offset = draw(st.sampled_from(["Z", "z", f"{sign}{hours:02d}:{minutes:02d}"]))
    text = f"{year:04d}-{month:02d}-{day:02d}T{clock}{fraction}{offset}"
    assume(not problems(API_CALL_TYPE, _event(text)))
    return text


def _bounds(text: str, now: datetime) -> str:
    """'out', 'in', 'edge' (too close to a bound to say which side the worker's clock puts it), or
    'no instant' (year 1 east of UTC, 9999 west of it: no UTC instant a datetime can hold)."""
    try:
        at = parse_time(text)
    except ValueError:
        return "no instant"
    low, high = now - MAX_AGE, now + MAX_LEAD
    if abs(at - low) < EDGE or abs(at - high) < EDGE:
        return "edge"
    return "in" if low < at < high else "out"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(times=st.lists(event_times(), min_size=1, max_size=6))
def test_any_valid_schema_event_time_is_billed_or_dead_lettered_and_a_valid_call_after_it_is_billed(
    times: list[str], broker: str, topics: Topics, running: tuple[Worker, Outputs]
) -> None:
    worker, outputs = running
    hostile = [_event(t, "any") for t in times]
    after = _event(_valid_now(), "after")
    _send(broker, topics, [*hostile, after])
    outputs.wait_billed(after["id"], worker)
    outputs.poll()  # the DLQ records of the same checkpoint
    now = datetime.now(UTC)
    for event in hostile:
        billed, reasons = outputs.billed.get(event["id"], 0), outputs.dead.get(event["id"], [])
        assert billed + len(reasons) == 1, (event["time"], billed, reasons)
        side = _bounds(event["time"], now)
        if side == "no instant":
            assert reasons and reasons[0].startswith(("invalid", "out_of_bounds")), (event["time"], reasons)
        elif side == "out":
            assert [r.split(":")[0] for r in reasons] == ["out_of_bounds"], (event["time"], reasons)
        elif side == "in":  # counted, or behind the stream time by more than the lateness
            assert billed == 1 or reasons[0].startswith("late:"), (event["time"], reasons)
    assert outputs.billed[after["id"]] == 1


def test_a_year_0001_event_written_straight_to_the_input_is_dead_lettered_and_the_next_call_is_billed(
    broker: str, topics: Topics, running: tuple[Worker, Outputs]
) -> None:
    worker, outputs = running
    ancient, after = _event("0001-01-01T00:00:00Z", "ancient"), _event(_valid_now(), "after")
    _send(broker, topics, [ancient, after])
    outputs.wait_billed(after["id"], worker)
    outputs.poll()
    assert [r.split(":")[0] for r in outputs.dead[ancient["id"]]] == ["out_of_bounds"]
    assert ancient["id"] not in outputs.billed


def test_a_year_2100_event_does_not_make_the_licensees_valid_calls_late(
    broker: str, topics: Topics, running: tuple[Worker, Outputs]
) -> None:
    worker, outputs = running
    future = _event("2100-01-01T00:00:00Z", "future")
    start = datetime.now(UTC) - timedelta(minutes=30)
    valid = [
        orjson.loads(orjson.dumps(c.to_cloudevent()))
        for c in calls_of(LICENSEE, 5, start, timedelta(minutes=5))
    ]
    for event in valid:
        event["data"]["requester"] = _own_org(event["id"])
    _send(broker, topics, [future, *valid])
    outputs.wait_billed(valid[-1]["id"], worker)
    outputs.poll()
    assert [r.split(":")[0] for r in outputs.dead[future["id"]]] == ["out_of_bounds"]
    assert {e["id"]: outputs.billed.get(e["id"]) for e in valid} == {e["id"]: 1 for e in valid}
    assert not any(e["id"] in outputs.dead for e in valid)


@pytest.mark.parametrize("time_text", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_an_event_time_without_a_utc_instant_is_dead_lettered_and_the_next_call_is_billed(
    time_text: str, broker: str, topics: Topics, running: tuple[Worker, Outputs]
) -> None:
    # Before 4b0b11b these crashed the deserializer (OverflowError), and the worker with it, on every start.
    worker, outputs = running
    assert not problems(API_CALL_TYPE, _event(time_text))  # the schema lets it through
    edge, after = _event(time_text, "edge"), _event(_valid_now(), "after")
    _send(broker, topics, [edge, after])
    outputs.wait_billed(after["id"], worker, timeout=30)
    outputs.poll()
    assert [r.split(":")[0] for r in outputs.dead[edge["id"]]] == ["invalid"]
    assert edge["id"] not in outputs.billed
