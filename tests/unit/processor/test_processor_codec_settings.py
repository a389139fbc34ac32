"""Invalid input is named precisely for the dead letters; settings validate their environment."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from processor_helpers import OCT, call

from services.core.errors import SettingsError
from services.core.events import ApiCall, dumps, loads
from services.core.topics import ALERTS, API_CALLS, API_CALLS_DLQ
from services.processor.codec import Invalid, Source, dead_letter, decode_call
from services.processor.settings import ProcessorSettings

VALID = call(1, OCT).to_cloudevent()


@pytest.mark.parametrize(
    ("payload", "reason", "field"),
    [
        (b"", "invalid: empty message", None),
        (b"{not json", "invalid: not JSON", "(message)"),
        (dumps({**VALID, "type": "other"}), "invalid: schema", "type"),
        (dumps({**VALID, "data": {**VALID["data"], "records": -1}}), "invalid: schema", "data.records"),
        (dumps({k: v for k, v in VALID.items() if k != "time"}), "invalid: schema", "time"),
    ],
)
def test_a_message_that_is_not_a_valid_api_call_is_named_with_its_reason(
    payload: bytes, reason: str, field: str | None
) -> None:
    result = decode_call(payload)
    assert isinstance(result, Invalid) and result.reason == reason
    if field:
        assert field in [p["field"] for p in result.problems]


def test_a_valid_message_becomes_the_call_it_carries() -> None:
    assert decode_call(dumps(VALID)) == call(1, OCT)
    assert isinstance(decode_call(dumps(VALID)), ApiCall)


def test_a_dead_letter_names_reason_topic_partition_offset_and_keeps_the_payload() -> None:
    record = loads(
        dead_letter(
            Source(API_CALLS, 3, 42, b"pebble"),
            "invalid: not JSON",
            b"{x",
            datetime(2026, 11, 1, tzinfo=UTC),
            [{"field": "(message)", "reason": "bad"}],
        )
    )
    assert record == {
        "reason": "invalid: not JSON",
        "problems": [{"field": "(message)", "reason": "bad"}],
        "topic": API_CALLS,
        "partition": 3,
        "offset": 42,
        "key": "pebble",
        "payload": "{x",
        "payload_truncated": False,
        "detected_at": "2026-11-01T00:00:00Z",
    }


def test_settings_default_to_the_design_topics_and_bounds() -> None:
    settings = ProcessorSettings.from_env({"TOLLGATE_KAFKA_BOOTSTRAP": "127.0.0.1:9092"})
    assert (settings.app_id, settings.input_topic, settings.alerts_topic, settings.dlq_topic) == (
        "tollgate-processor",
        API_CALLS,
        ALERTS,
        API_CALLS_DLQ,
    )
    assert settings.policy().lateness.days == 7 and settings.metrics_max_licensees == 1000


@pytest.mark.parametrize(
    "environ",
    [
        {},
        {"TOLLGATE_KAFKA_BOOTSTRAP": "nohostport"},
        {"TOLLGATE_KAFKA_BOOTSTRAP": "h:1", "TOLLGATE_PROCESSOR_METRICS_PORT": "x"},
        {
            "TOLLGATE_KAFKA_BOOTSTRAP": "h:1",
            "TOLLGATE_PROCESSOR_LATENESS_SECONDS": "100",
            "TOLLGATE_PROCESSOR_DEDUPE_HORIZON_SECONDS": "10",
        },
    ],
)
def test_settings_refuse_a_missing_or_malformed_environment(environ: dict[str, str]) -> None:
    with pytest.raises(SettingsError):
        ProcessorSettings.from_env(environ)


@pytest.mark.parametrize(("value", "expected"), [("", True), ("off", False), ("FALSE", False), ("1", True)])
def test_the_sweep_from_a_floor_is_on_unless_switched_off(value: str, expected: bool) -> None:
    environ = {"TOLLGATE_KAFKA_BOOTSTRAP": "h:1", "TOLLGATE_PROCESSOR_SWEEP_FROM_FLOOR": value}
    assert ProcessorSettings.from_env(environ).sweep_from_floor is expected


def test_a_sweep_switch_that_is_not_a_boolean_is_refused_by_name() -> None:
    environ = {"TOLLGATE_KAFKA_BOOTSTRAP": "h:1", "TOLLGATE_PROCESSOR_SWEEP_FROM_FLOOR": "maybe"}
    with pytest.raises(SettingsError, match="TOLLGATE_PROCESSOR_SWEEP_FROM_FLOOR"):
        ProcessorSettings.from_env(environ)
