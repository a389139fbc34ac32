"""The stall detector: an input partition behind its end whose progress stopped is reported, once per run."""

from __future__ import annotations

import pytest

from services.core.errors import SettingsError
from services.processor.settings import ProcessorSettings
from services.processor.stall import PartitionView, StallDetector


def _check(detector: StallDetector, committed: int | None, end: int, handled: int | None) -> list[int]:
    return detector.observe([PartitionView(0, committed, end, handled)])


def test_a_partition_behind_without_progress_is_reported_after_the_given_checks() -> None:
    detector = StallDetector(checks=2)
    assert _check(detector, 810, 3540, 3539) == []
    assert _check(detector, 810, 3540, 3539) == []
    assert _check(detector, 810, 3540, 3539) == [0]
    assert _check(detector, 810, 3540, 3539) == []  # the count restarts after a report


def test_a_partition_never_delivered_is_reported() -> None:
    detector = StallDetector(checks=1)
    assert _check(detector, None, 50, None) == []
    assert _check(detector, None, 50, None) == [0]


def test_progress_or_a_caught_up_partition_is_not_a_stall() -> None:
    detector = StallDetector(checks=1)
    for handled in range(5):  # handling moves on: busy, not stalled
        assert _check(detector, 100, 3540, handled) == []
    caught_up = StallDetector(checks=1)
    for _ in range(5):
        assert _check(caught_up, 3540, 3540, 3539) == []
    empty = StallDetector(checks=1)
    for _ in range(5):
        assert _check(empty, None, 0, None) == []


def test_reset_and_revocation_forget_the_count() -> None:
    detector = StallDetector(checks=1)
    _check(detector, 10, 20, 19)
    detector.reset()
    assert _check(detector, 10, 20, 19) == []
    detector.observe([])  # partition 0 revoked
    assert _check(detector, 10, 20, 19) == []


def test_the_session_timeout_defaults_to_ten_seconds_and_the_broker_minimum_is_refused() -> None:
    base = {"TOLLGATE_KAFKA_BOOTSTRAP": "127.0.0.1:9092"}
    default = ProcessorSettings.from_env(base)
    assert (default.session_timeout_seconds, default.heartbeat_interval_seconds) == (10.0, 3.0)
    quick = ProcessorSettings.from_env({**base, "TOLLGATE_PROCESSOR_SESSION_TIMEOUT_SECONDS": "6"})
    assert quick.heartbeat_interval_seconds == 2.0
    with pytest.raises(SettingsError):
        ProcessorSettings.from_env({**base, "TOLLGATE_PROCESSOR_SESSION_TIMEOUT_SECONDS": "3"})
