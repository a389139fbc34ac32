"""A failed worker starts afresh in the same process, with a capped backoff."""

from __future__ import annotations

import sys
import time

import pytest

from services.processor.restart import ATTEMPT, backoff, next_environ, restart


@pytest.mark.parametrize(
    ("attempt", "seconds"), [(1, 1.0), (2, 2.0), (3, 4.0), (5, 16.0), (6, 30.0), (50, 30.0)]
)
def test_the_backoff_doubles_up_to_thirty_seconds(attempt: int, seconds: float) -> None:
    assert backoff(attempt) == seconds


def test_attempts_count_up_while_runs_fail_quickly_and_start_again_after_a_healthy_run() -> None:
    assert next_environ({}, 1.0)[ATTEMPT] == "1"
    assert next_environ({ATTEMPT: "3"}, 5.0)[ATTEMPT] == "4"
    assert next_environ({ATTEMPT: "3"}, 600.0)[ATTEMPT] == "1"


def test_a_failure_replaces_the_process_with_a_fresh_worker_after_the_backoff() -> None:
    calls, naps = [], []
    restart({"TOLLGATE_X": "1", ATTEMPT: "1"}, time.monotonic(), RuntimeError("UNKNOWN_MEMBER_ID"),
            execute=lambda *args: calls.append(args), sleep=naps.append)  # fmt: skip
    (path, argv, env), = calls
    assert path == sys.executable and argv[1:] == ["-m", "services.cli", "serve", "processor"]
    assert env == {"TOLLGATE_X": "1", ATTEMPT: "2"} and naps == [2.0]
