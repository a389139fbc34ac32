"""Any event time a schema-valid call can carry: nothing raises, and only times within bounds count."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st
from processor_helpers import NOW, agreements, call

from services.core.clock import FixedClock
from services.core.events import dumps
from services.core.schemas import API_CALL_TYPE, problems
from services.processor.codec import Invalid, read_message
from services.processor.domain.simulate import Simulation, by_licensee
from services.processor.domain.step import COUNTED, OUT_OF_BOUNDS, Policy
from services.processor.serdes import event_timestamp

POLICY = Policy()
LEAD_MS = int(POLICY.max_lead.total_seconds() * 1000)
OFFSETS = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)


def _rfc3339(moment: datetime) -> str:
    text = moment.isoformat()
    return text.replace("+00:00", "Z") if moment.utcoffset() == timedelta(0) else text


ANY_TIME = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59))
NEAR_NOW = st.datetimes(
    min_value=NOW.replace(tzinfo=None) - timedelta(days=450),
    max_value=NOW.replace(tzinfo=None) + timedelta(hours=1),
)


@settings(max_examples=400, deadline=None)
@given(moment=st.one_of(ANY_TIME, NEAR_NOW), zone=OFFSETS)
def test_any_schema_valid_event_time_is_counted_or_dead_lettered_and_never_raises(
    moment: datetime, zone: timezone
) -> None:
    event = call(1, NOW).to_cloudevent()
    event["time"] = _rfc3339(moment.replace(tzinfo=zone))
    assert problems(API_CALL_TYPE, event) == []
    incoming = read_message(dumps(event))
    stamp = event_timestamp(FixedClock(NOW), LEAD_MS)(incoming, None, 0, None)
    assert 0 <= stamp <= int(NOW.timestamp() * 1000) + LEAD_MS
    if isinstance(incoming.call, Invalid):
        assert incoming.call.problems[0]["field"] == "time"
        return
    simulation = Simulation(by_licensee(agreements().values()), NOW, POLICY)
    decision = simulation.feed(incoming.call)
    within = NOW - POLICY.max_age <= incoming.call.time <= NOW + POLICY.max_lead
    assert decision.kind == (COUNTED if within else OUT_OF_BOUNDS)
    after = simulation.feed(call(2, NOW - timedelta(days=1)))
    assert after.kind == COUNTED  # whatever came before, a valid call still counts


def test_a_time_out_of_range_in_utc_is_dead_lettered_naming_time() -> None:
    event = call(1, NOW).to_cloudevent()
    event["time"] = "9999-12-31T23:59:59-01:00"
    incoming = read_message(dumps(event))
    assert isinstance(incoming.call, Invalid) and incoming.call.problems[0]["field"] == "time"
