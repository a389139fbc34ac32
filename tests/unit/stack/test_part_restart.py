"""Stopping and starting one part of a running stack in place (for the chaos tier's faults)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from services.stack import LocalStack, PartFailed, StackConfig, StackError
from services.stack import local as local_module
from services.stack.kafka import restart as restart_kafka
from services.stack.process import is_alive, log_has
from services.stack.state import save_state


def _stack(tmp_path: Path, parts: dict[str, dict[str, Any]], ready: bool = True) -> LocalStack:
    stack = LocalStack(StackConfig(stack_dir=tmp_path, parts=("kafka", "postgres")))
    save_state(stack.config.state_path, {
        "stack_dir": str(tmp_path), "ready": ready, "ports": {"kafka": 9092, "kafka_controller": 9093},
        "parts": parts,
    })
    return stack


def _sleeper(tmp_path: Path) -> subprocess.Popen[bytes]:
    """A process whose command line names the stack dir, as the stack's own processes do."""
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", f"{tmp_path}/kafka"])  # noqa: S603


def test_only_kafka_and_postgresql_can_be_stopped_alone(tmp_path: Path) -> None:
    stack = _stack(tmp_path, {"kafka": {"pid": None}})

    with pytest.raises(StackError, match="cannot be stopped alone"):
        stack.stop_part("prometheus")


def test_a_part_of_a_stack_that_is_not_running_cannot_be_stopped(tmp_path: Path) -> None:
    stack = _stack(tmp_path, {"kafka": {"pid": None}}, ready=False)

    with pytest.raises(StackError, match="no running stack"):
        stack.stop_part("kafka")


def test_stopping_a_part_ends_its_process_and_keeps_its_record(tmp_path: Path) -> None:
    sleeper = _sleeper(tmp_path)
    stack = _stack(tmp_path, {"kafka": {"pid": sleeper.pid, "bootstrap": "127.0.0.1:9092"}})

    stack.stop_part("kafka", kill=True)
    sleeper.wait(timeout=10)

    assert not is_alive(sleeper.pid)
    state = stack.state() or {}
    assert state["parts"]["kafka"] == {"pid": sleeper.pid, "bootstrap": "127.0.0.1:9092"}
    assert state["ports"] == {"kafka": 9092, "kafka_controller": 9093}


def test_starting_a_part_again_uses_its_recorded_ports_and_records_the_new_pid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}

    def fake_restart(cfg: StackConfig, ports: dict[str, int], on_spawn: Any) -> dict[str, Any]:
        seen["ports"] = dict(ports)
        on_spawn(4242)
        return {"pid": 4242}

    monkeypatch.setitem(local_module.RESTARTERS, "kafka", fake_restart)
    stack = _stack(tmp_path, {"kafka": {"pid": None, "bootstrap": "127.0.0.1:9092"}})

    info = stack.start_part("kafka")

    assert seen["ports"] == {"kafka": 9092, "kafka_controller": 9093}
    assert info == {"pid": 4242, "bootstrap": "127.0.0.1:9092"}
    assert (stack.state() or {})["parts"]["kafka"]["pid"] == 4242


def test_a_running_part_is_not_started_twice(tmp_path: Path) -> None:
    sleeper = _sleeper(tmp_path)
    try:
        stack = _stack(tmp_path, {"kafka": {"pid": sleeper.pid}})
        with pytest.raises(StackError, match="already running"):
            stack.start_part("kafka")
    finally:
        sleeper.kill()
        sleeper.wait(timeout=10)


def test_kafka_is_not_restarted_where_it_never_ran(tmp_path: Path) -> None:
    with pytest.raises(PartFailed, match="nothing to restart"):
        restart_kafka(StackConfig(stack_dir=tmp_path), {"kafka": 1, "kafka_controller": 2}, lambda pid: None)


def test_a_restart_waits_for_a_ready_line_written_after_it_began(tmp_path: Path) -> None:
    log = tmp_path / "kafka.log"
    log.write_text("[x] Kafka Server started\n")
    since = log.stat().st_size

    assert log_has(log, "Kafka Server started")()
    assert not log_has(log, "Kafka Server started", since)()
    with log.open("a") as out:
        out.write("[y] Kafka Server started\n")
    assert log_has(log, "Kafka Server started", since)()
