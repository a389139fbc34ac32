"""Start the worker afresh after a failure, in the same process (same pid), with a capped backoff.

A failed quix app cannot be run again in place (its consumer, producer and store are closed), and an
error such as a broker outage longer than the session timeout (UNKNOWN_MEMBER_ID on commit) is
transient: the worker must come back by itself, not only under a supervisor. The open transaction was
never committed, so the restarted worker re-reads those calls against the committed state: nothing is
lost or counted twice.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)
ATTEMPT = "TOLLGATE_PROCESSOR_RESTART_ATTEMPT"
# A run this long counts as healthy: the next failure starts the backoff again.
HEALTHY_SECONDS = 60.0


def backoff(attempt: int) -> float:
    """Seconds to wait before restart `attempt` (1, 2, 4, ... at most 30)."""
    return float(min(30, 2 ** max(0, attempt - 1)))


def next_environ(environ: Mapping[str, str], ran_for: float) -> dict[str, str]:
    """The environment of the restarted worker, with its attempt count."""
    previous = int(environ.get(ATTEMPT, "0") or "0") if ran_for < HEALTHY_SECONDS else 0
    return {**environ, ATTEMPT: str(previous + 1)}


def restart(
    environ: Mapping[str, str],
    started: float,
    exc: BaseException,
    execute: Callable[[str, list[str], dict[str, str]], object] = os.execve,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Log the failure, wait, and replace this process with a fresh worker."""
    env = next_environ(environ, time.monotonic() - started)
    attempt = int(env[ATTEMPT])
    delay = backoff(attempt)
    log.error("processor failed (%s: %s); restart %d in %.0fs", type(exc).__name__, exc, attempt, delay)
    sleep(delay)
    logging.shutdown()
    execute(sys.executable, [sys.executable, "-m", "services.cli", "serve", "processor"], env)
