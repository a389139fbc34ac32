"""The fast path agrees with the full path (schema, codec checks) on generated valid and invalid envelopes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from services.core.schemas import BILLABLE_TYPE, problems
from services.ledger.domain.codec import decode, to_row
from services.ledger.domain.fastpath import FastRows
from services.ledger.errors import Rejected

IDENT = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:@/-]{0,12}", fullmatch=True)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False,
        allow_infinity=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)  # fmt: skip
TEXT = st.text(st.characters(exclude_characters="\x00"), max_size=20)  # the ledger refuses NUL anywhere
FAST = FastRows()  # shared on purpose: its memos must never carry a verdict over to another value


@st.composite
def instants(draw: st.DrawFn) -> str:
    """RFC 3339 strings in the shapes producers write: Z or an offset, with or without fractions."""
    moment = draw(st.datetimes(datetime(1, 1, 2), datetime(9999, 12, 30), timezones=st.just(UTC)))
    offset = draw(st.sampled_from([None, timedelta(0), timedelta(hours=5, minutes=30), timedelta(hours=-8)]))
    text = moment.astimezone(timezone(offset)).isoformat() if offset is not None else moment.isoformat()
    return text.replace("+00:00", "Z") if draw(st.booleans()) else text


@st.composite
def aggregate(draw: st.DrawFn, start: datetime, end: datetime, org_type: str | None) -> dict[str, Any]:
    """An aggregated delta's fields: event times inside the bucket, the government flag, the input range."""
    span = sorted(start + (end - start) * draw(st.floats(0, 0.999)) for _ in range(2))
    first = draw(st.integers(0, 2**63 - 1))
    fields: dict[str, Any] = {"first_event_at": span[0].isoformat(), "last_event_at": span[1].isoformat(),
        "reference": {"topic": draw(TEXT.filter(bool)), "partition": draw(st.integers(0, 2**31 - 1)),
                      "first_offset": first, "last_offset": draw(st.integers(first, 2**63 - 1))}}  # fmt: skip
    if org_type == "government":
        fields["government_notified"] = draw(st.booleans())
    for name in ("first_event_at", "last_event_at", "reference"):
        if draw(st.integers(0, 4)) == 0:
            del fields[name]
    return fields


@st.composite
def envelopes(draw: st.DrawFn) -> dict[str, Any]:
    """Schema-valid billable envelopes, with the optional parts sometimes left out."""
    start = draw(st.datetimes(datetime(2020, 1, 1), datetime(2030, 1, 1), timezones=st.just(UTC)))
    end = start + draw(st.timedeltas(timedelta(seconds=1), timedelta(hours=1)))
    usage_id = str(draw(st.uuids()))
    data: dict[str, Any] = {
        "usage_id": usage_id.upper() if draw(st.booleans()) else usage_id, "licensee_id": draw(IDENT),
        "app_id": draw(IDENT), "period_start": start.isoformat().replace("+00:00", "Z"),
        "period_end": end.isoformat(), "calls": draw(st.integers(0, 2**40)),
        "records": draw(st.integers(0, 2**40)),
    }  # fmt: skip
    if draw(st.booleans()):
        data["occurred_at"] = draw(instants())
    if draw(st.booleans()):
        data["requester"] = {"org_id": draw(IDENT), "org_type": draw(st.sampled_from(
            ["commercial", "government", "academic", "nonprofit", "unknown"]))}  # fmt: skip
    if draw(st.booleans()):
        data["source_event"] = {"source": draw(TEXT), "id": draw(TEXT)}
    if draw(st.booleans()):
        data.update(draw(aggregate(start, end, data.get("requester", {}).get("org_type"))))
    event = {"specversion": "1.0", "id": usage_id, "source": "tollgate/processor", "type": BILLABLE_TYPE,
             "time": draw(instants()), "data": data}  # fmt: skip
    if draw(st.booleans()):
        event["datacontenttype"] = "application/json"
    return event


def _mutate(event: dict[str, Any], draw: st.DrawFn) -> None:
    """Change one thing somewhere: a value, a missing key, an extra key, an edge-case string."""
    data = event.get("data")
    nested = [v for v in data.values() if isinstance(v, dict)] if isinstance(data, dict) else []
    targets = [t for t in [event, data, *nested] if isinstance(t, dict) and t]
    if not targets:
        return
    target = draw(st.sampled_from(targets))
    key = draw(st.sampled_from(sorted(target)))
    how = draw(st.sampled_from(["value", "drop", "extra", "edge"]))
    if how == "drop":
        del target[key]
    elif how == "extra":
        target[draw(st.text(max_size=22))] = draw(JSON)
    elif how == "value":
        target[key] = draw(JSON)
    elif isinstance(target[key], str):
        target[key] = draw(st.sampled_from([
            target[key] + "\n", target[key] + "\x00", "", " " + target[key], target[key] * 40,
            target[key].replace("-", ""), "9999-12-31T23:30:00Z", "0001-01-01T00:00:00+01:00",
            "2026-02-29T00:00:00Z", "2026-01-01T23:59:60Z", "2026-01-01T00:00:00",
        ]))  # fmt: skip
    else:
        target[key] = draw(st.sampled_from([-1, 2**40 + 1, 2**31, 2**63, 1.0, True, False, None, "1"]))


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    """Envelopes with one to three things changed: mostly invalid, sometimes still valid."""
    event = draw(envelopes())
    for _ in range(draw(st.integers(1, 3))):
        _mutate(event, draw)
    return event


def full_path(value: bytes) -> tuple[Any, ...] | None:
    """The reference verdict: the row, or None when refused."""
    try:
        return to_row(decode(value), "t", 1, 7)
    except Rejected:
        return None


def encoded(event: dict[str, Any]) -> bytes:
    """The envelope as a message value; hypothesis drops an envelope that cannot be one."""
    try:
        return orjson.dumps(event)
    except TypeError:
        # A lone surrogate cannot be encoded as UTF-8, so no such message can reach the topic.
        reject()


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(envelopes())
def test_every_generated_valid_envelope_takes_the_fast_path_with_the_full_paths_row(event: dict) -> None:
    value = encoded(event)
    assert problems(BILLABLE_TYPE, event) == []
    assert FAST.row(value, "t", 1, 7) == full_path(value) is not None


@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_the_fast_path_never_accepts_what_the_full_path_refuses_nor_changes_a_row(event: dict) -> None:
    value = encoded(event)
    fast = FAST.row(value, "t", 1, 7)
    if fast is not None:
        assert problems(BILLABLE_TYPE, event) == []
        assert fast == full_path(value)


@given(st.binary(max_size=64) | st.builds(orjson.dumps, JSON))
def test_anything_that_is_not_an_envelope_is_left_to_the_full_path(value: bytes) -> None:
    assert FAST.row(value, "t", 1, 7) is None
    assert FAST.row(None, "t", 1, 7) is None
