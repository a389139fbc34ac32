"""A SIGTERM raised again after a server's graceful shutdown reaches our handler instead of ending us."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator

import pytest

from services.core.shutdown import STOP_SIGNALS, keep_exit_graceful


@pytest.fixture
def restored_handlers() -> Iterator[None]:
    """Put pytest's own signal handlers back after the test."""
    saved = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


@pytest.mark.parametrize("sig", STOP_SIGNALS)
def test_a_stop_signal_calls_the_callback_and_the_process_lives_on(
    sig: signal.Signals, restored_handlers: None
) -> None:
    called = threading.Event()
    keep_exit_graceful(called.set)
    signal.raise_signal(sig)
    assert called.is_set()


def test_outside_the_main_thread_it_installs_nothing_and_does_not_fail(restored_handlers: None) -> None:
    before = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    errors: list[Exception] = []

    def call() -> None:
        try:
            keep_exit_graceful()
        except Exception as exc:  # a thread's exception would otherwise only be printed
            errors.append(exc)

    worker = threading.Thread(target=call)
    worker.start()
    worker.join()
    assert errors == []
    assert {sig: signal.getsignal(sig) for sig in STOP_SIGNALS} == before
