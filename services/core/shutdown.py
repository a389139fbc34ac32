"""Exit 0 after a graceful shutdown on SIGTERM/SIGINT, for servers that raise the signal again once done."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def _nothing() -> None:
    """By the time the signal comes back the server has shut down: nothing is left to stop."""


def keep_exit_graceful(on_signal: Callable[[], object] = _nothing) -> None:
    """Make SIGTERM/SIGINT call `on_signal` instead of ending the process; call it before the server runs."""
    # uvicorn handles these signals with a graceful shutdown, then restores the handlers it found and
    # raises the signal again. With the default handlers the process would die right there (exit -15),
    # before the code after the server ran; these handlers are the ones uvicorn restores, so they get it.
    # Python lets only the main thread install handlers (tests serve in other threads).
    if threading.current_thread() is threading.main_thread():
        for sig in STOP_SIGNALS:
            signal.signal(sig, lambda *_: on_signal())
