"""WriteAhead: one write in flight, settled in order, its error raised where the consumer settles."""

from __future__ import annotations

import threading

import pytest

from services.ledger.adapters.kafka.write_ahead import WriteAhead


def test_a_settled_write_gives_its_rows_and_the_offsets_it_stored() -> None:
    ahead = WriteAhead("test")
    assert ahead.ends == {}
    ahead.submit(lambda: 7, {0: 10, 3: 4})
    assert ahead.busy
    assert ahead.ends == {0: 10, 3: 4}
    assert ahead.settle() == (7, {0: 10, 3: 4})
    assert not ahead.busy
    assert ahead.ends == {}
    assert ahead.settle() is None
    ahead.close()


def test_a_second_write_is_refused_until_the_first_is_settled() -> None:
    ahead = WriteAhead("test")
    release = threading.Event()
    ahead.submit(lambda: int(release.wait(5)), {0: 1})
    with pytest.raises(RuntimeError, match="settle it first"):
        ahead.submit(lambda: 0, {0: 2})
    release.set()
    assert ahead.settle() == (1, {0: 1})
    ahead.close()


def test_the_write_runs_on_another_thread_while_the_caller_goes_on() -> None:
    ahead = WriteAhead("test")
    started, release = threading.Event(), threading.Event()

    def write() -> int:
        started.set()
        return int(release.wait(5))

    ahead.submit(write, {})
    assert started.wait(5)  # the caller is here, not blocked inside the write
    release.set()
    assert ahead.settle() == (1, {})
    ahead.close()


def test_a_failed_write_raises_when_settled_and_leaves_nothing_in_flight() -> None:
    ahead = WriteAhead("test")

    def write() -> int:
        raise OSError("connection lost")

    ahead.submit(write, {0: 5})
    with pytest.raises(OSError, match="connection lost"):
        ahead.settle()
    assert not ahead.busy
    ahead.submit(lambda: 1, {0: 5})
    assert ahead.settle() == (1, {0: 5})
    ahead.close()


def test_discard_waits_for_a_failing_write_and_swallows_its_error(caplog: pytest.LogCaptureFixture) -> None:
    ahead = WriteAhead("test")

    def write() -> int:
        raise OSError("broken pipe")

    ahead.submit(write, {0: 5})
    ahead.discard()
    assert not ahead.busy
    assert "broken pipe" in caplog.text
    ahead.close()
