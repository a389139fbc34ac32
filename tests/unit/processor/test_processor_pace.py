"""The checkpoint interval: short while the worker keeps up, the catch-up one while it is behind."""

from __future__ import annotations

import pytest

from services.core.errors import SettingsError
from services.processor.pace import Pace
from services.processor.settings import ProcessorSettings

BOOTSTRAP = {"TOLLGATE_KAFKA_BOOTSTRAP": "h:1"}


@pytest.mark.parametrize(
    ("lag", "expected"),
    [
        (0.0, 0.1),  # idle or caught up
        (0.05, 0.1),  # keeping up at half the drain rate: a few checkpoints' worth of lag
        (2.0, 0.1),  # exactly at the threshold still counts as keeping up
        (2.01, 1.0),  # just behind
        (900.0, 1.0),  # a backlog after an outage
    ],
)
def test_the_next_checkpoint_is_long_only_while_the_worker_is_behind(lag: float, expected: float) -> None:
    assert Pace(interval=0.1, catch_up_interval=1.0, behind_after=2.0).next_interval(lag) == expected


def test_settings_give_a_one_second_catch_up_beyond_two_seconds_of_lag_by_default() -> None:
    pace = ProcessorSettings.from_env(BOOTSTRAP).pace()
    assert (pace.interval, pace.catch_up_interval, pace.behind_after) == (0.05, 1.0, 2.0)


def test_a_catch_up_interval_equal_to_the_short_one_turns_catching_up_off() -> None:
    environ = {**BOOTSTRAP, "TOLLGATE_PROCESSOR_CATCH_UP_COMMIT_INTERVAL_SECONDS": "0.05"}
    pace = ProcessorSettings.from_env(environ).pace()
    assert {pace.next_interval(lag) for lag in (0.0, 5.0, 3600.0)} == {0.05}


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"TOLLGATE_PROCESSOR_CATCH_UP_COMMIT_INTERVAL_SECONDS": "0.04"}, "at least"),
        ({"TOLLGATE_PROCESSOR_CATCH_UP_COMMIT_INTERVAL_SECONDS": "6"}, "half of"),
        (
            {
                "TOLLGATE_PROCESSOR_TRANSACTION_TIMEOUT_SECONDS": "3",
                "TOLLGATE_PROCESSOR_CATCH_UP_COMMIT_INTERVAL_SECONDS": "2",
            },
            "half of",
        ),
        ({"TOLLGATE_PROCESSOR_CATCH_UP_LAG_SECONDS": "-1"}, "at least"),
    ],
)
def test_a_catch_up_setting_out_of_its_bounds_is_refused_by_name(environ: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match="TOLLGATE_PROCESSOR_CATCH_UP_") as raised:
        ProcessorSettings.from_env({**BOOTSTRAP, **environ})
    assert named in str(raised.value)
