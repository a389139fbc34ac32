"""Every message schema accepts its valid examples and names the field of each invalid one."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from services.core import schemas
from services.core.agreements import load_agreements
from services.core.events import AlertRaised, UsageRecorded
from services.demo.scenario import AGREEMENTS_FILE, demo_calls

CALL = demo_calls()[0].to_cloudevent()


def _with(document: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(document)
    *parents, last = path.split(".")
    target = changed
    for part in parents:
        target = target[part]
    if value is _DELETE:
        del target[last]
    else:
        target[last] = value
    return changed


_DELETE = object()


def test_every_demo_call_is_a_valid_api_call_event() -> None:
    assert all(schemas.problems(schemas.API_CALL_TYPE, c.to_cloudevent()) == [] for c in demo_calls())


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        ("data.records", -1, "data.records"),
        ("data.records", "12", "data.records"),
        ("data.status", 700, "data.status"),
        ("data.method", "FETCH", "data.method"),
        ("data.requester.org_type", "military", "data.requester.org_type"),
        ("data.licensee_id", _DELETE, "data.licensee_id"),
        ("data.licensee_id", "", "data.licensee_id"),
        ("data.app_id", "x" * 500, "data.app_id"),
        ("data.surprise", 1, "data"),
        ("time", "2026-10-01T00:00:00", "time"),
        ("time", "yesterday", "time"),
        ("id", "", "id"),
        ("source", _DELETE, "source"),
        ("specversion", "0.3", "specversion"),
        ("type", "io.tollgate.api.call.v2", "type"),
    ],
)
def test_an_invalid_api_call_names_the_bad_field(path: str, value: Any, field: str) -> None:
    found = schemas.problems(schemas.API_CALL_TYPE, _with(CALL, path, value))
    assert field in [p["field"] for p in found], found
    assert all(p["reason"] for p in found)


def test_a_non_object_event_is_refused_with_a_reason() -> None:
    found = schemas.problems(schemas.API_CALL_TYPE, ["not", "an", "event"])
    assert found and found[0]["field"] == "(event)"


def test_alert_and_billable_events_built_by_the_core_validate() -> None:
    at = datetime(2026, 10, 5, 12, tzinfo=UTC)
    alert = AlertRaised("omnisoft", "volume.breach", "critical", at, at, at, subject="calls", metric="calls",
                        observed=2000, limit=2000, event_ids=("gw/1",), app_id="a", org_id="o")
    usage = UsageRecorded.for_call(demo_calls()[0], at, at)
    assert schemas.problems(schemas.ALERT_TYPE, alert.to_cloudevent()) == []
    assert schemas.problems(schemas.BILLABLE_TYPE, usage.to_cloudevent()) == []


def test_a_billable_event_with_negative_calls_is_refused() -> None:
    at = datetime(2026, 10, 5, 12, tzinfo=UTC)
    event = UsageRecorded.for_call(demo_calls()[0], at, at).to_cloudevent()
    found = schemas.problems(schemas.BILLABLE_TYPE, _with(event, "data.calls", -3))
    assert [p["field"] for p in found] == ["data.calls"]


def test_the_demo_agreements_validate_as_agreement_events() -> None:
    for agreement in load_agreements(AGREEMENTS_FILE):
        assert schemas.problems(schemas.AGREEMENT_TYPE, agreement.to_cloudevent()) == []


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        ("data.plan.currency", "usd", "data.plan.currency"),
        ("data.plan.monthly_fee_minor", 10.5, "data.plan.monthly_fee_minor"),
        ("data.limits.calls_per_month", 0, "data.limits.calls_per_month"),
        ("data.government_use", "sometimes", "data.government_use"),
    ],
)
def test_an_invalid_agreement_names_the_bad_field(path: str, value: Any, field: str) -> None:
    event = load_agreements(AGREEMENTS_FILE)[0].to_cloudevent()
    found = schemas.problems(schemas.AGREEMENT_TYPE, _with(event, path, value))
    assert field in [p["field"] for p in found], found


@pytest.mark.parametrize("path", ["data.records", "data.status", "data.bytes"])
@pytest.mark.parametrize("raw", ["1.0", "1e2", "2E2", "200.0", "-0.0", "1.5"])
def test_a_number_with_a_fraction_or_exponent_in_an_integer_field_is_refused(path: str, raw: str) -> None:
    # Parsed as ingest parses a body: orjson reads 1e2 as the float 100.0.
    event = _with(CALL, path, orjson.loads(raw))
    assert isinstance(event["data"][path.split(".")[-1]], float)
    assert path in {p["field"] for p in schemas.problems(schemas.API_CALL_TYPE, event)}


def test_the_fast_validator_alone_would_take_a_whole_float_as_an_integer() -> None:
    # Why problems() sends documents holding floats to the strict validator (see services/core/schemas.py).
    event = _with(CALL, "data.records", 100.0)
    assert schemas._fast(schemas.API_CALL_TYPE)(event) is not None
    assert schemas.problems(schemas.API_CALL_TYPE, _with(CALL, "data.records", 100)) == []


@pytest.mark.parametrize("path", ["id", "source", "subject", "data.endpoint"])
def test_a_nul_in_a_text_field_is_refused_by_the_schema(path: str) -> None:
    found = schemas.problems(schemas.API_CALL_TYPE, _with(CALL, path, "a\x00b"))
    assert [p["field"] for p in found] == [path]


@pytest.mark.parametrize("moment", [
    "\uff12\uff10\uff12\uff16-10-15T10:00:00Z", "2026-10-15T10:00:0\u0665Z", "2026-10-15T10:00:00.\u0661Z",
    "2026-10-15T10:00:00+0200",
])  # fmt: skip
def test_an_event_time_with_non_ascii_digits_or_a_bare_offset_is_refused(moment: str) -> None:
    found = schemas.problems(schemas.API_CALL_TYPE, _with(CALL, "time", moment))
    assert "time" in {p["field"] for p in found}


def test_a_float_where_the_schema_allows_a_number_is_still_valid() -> None:
    document = load_agreements(AGREEMENTS_FILE)[0].to_cloudevent()
    assert schemas.holds_float(document)  # warning_ratio and severe_ratio
    assert schemas.problems(schemas.AGREEMENT_TYPE, document) == []


@pytest.mark.parametrize(
    ("path", "value", "refused"),
    [
        (("data", "records"), 1.0, True),
        (("data", "status"), 200.0, True),
        (("data", "bytes"), 1e2, True),
        (("myextension",), 2.0, True),
        (("myextension",), 2, False),
        (("data", "records"), 1, False),
    ],
)
def test_the_targeted_integer_check_finds_a_float_wherever_the_schema_types_an_integer(
    path: tuple[str, ...], value: object, refused: bool
) -> None:
    api_call = schemas.API_CALL_TYPE
    assert schemas.integer_paths(api_call) is not None  # the targeted check, not the whole-document walk
    event = demo_calls()[0].to_cloudevent()
    node = event
    for name in path[:-1]:
        node = node[name]
    node[path[-1]] = value
    assert schemas.holds_integer_float(api_call, event) is refused
    assert bool(schemas.problems(api_call, event)) is refused
