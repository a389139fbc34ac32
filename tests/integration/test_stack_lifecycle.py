"""A LocalStack starts in its own directory, is reused while alive, stops by pid, and fails loudly."""

from __future__ import annotations

import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.stack import LocalStack, PartFailed, StackConfig
from services.stack.kafka import install_jars
from services.stack.process import command_line, is_alive

pytestmark = pytest.mark.integration


@pytest.fixture
def stack_dir() -> Iterator[Path]:
    """A throwaway stack directory under /tmp (the postgres user must be able to reach it)."""
    path = Path(tempfile.mkdtemp(prefix="tollgate-stack-lifecycle-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _processes_mentioning(text: str) -> list[int]:
    pids = [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]
    return [pid for pid in pids if text in command_line(pid) and is_alive(pid)]


def test_a_second_stack_starts_is_reused_and_stops_leaving_no_process(stack_dir: Path) -> None:
    stack = LocalStack(StackConfig(stack_dir=stack_dir))
    install_jars(stack.config.libs_dir, stack.config.kafka_pom)
    try:
        first = stack.up()
        pids = {part: info["pid"] for part, info in (stack.state() or {})["parts"].items()}
        again = stack.up()
        pids_again = {part: info["pid"] for part, info in (stack.state() or {})["parts"].items()}
        assert stack.status()["running"]
    finally:
        stopped = stack.down()

    assert again == first
    assert pids_again == pids
    assert set(pids) == {"kafka", "postgres", "prometheus", "alertmanager"}
    assert sorted(stopped) == sorted(pids)
    assert not [part for part, pid in pids.items() if is_alive(pid)]
    assert not _processes_mentioning(f"{stack_dir}/")
    assert stack.state() is None


def test_a_part_whose_port_is_taken_fails_naming_the_part_and_its_log(stack_dir: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        stack = LocalStack(
            StackConfig(stack_dir=stack_dir, parts=("prometheus",), ports={"prometheus": port})
        )

        with pytest.raises(PartFailed) as failure:
            stack.up()

    assert failure.value.part == "prometheus"
    assert f"127.0.0.1:{port} is already in use" in str(failure.value)
    assert str(stack_dir / "logs" / "prometheus.log") in str(failure.value)


def test_a_missing_binary_fails_naming_the_part_and_its_log(stack_dir: Path) -> None:
    config = StackConfig(
        stack_dir=stack_dir, parts=("alertmanager",), alertmanager_bin="/nonexistent/alertmanager"
    )

    with pytest.raises(PartFailed) as failure:
        LocalStack(config).up()

    assert failure.value.part == "alertmanager"
    assert "/nonexistent/alertmanager" in failure.value.reason
    assert failure.value.log_path == stack_dir / "logs" / "alertmanager.log"


def test_a_part_that_dies_at_start_stops_the_parts_already_running(stack_dir: Path) -> None:
    dies = shutil.which("false") or "/bin/false"
    config = StackConfig(stack_dir=stack_dir, parts=("prometheus", "alertmanager"), alertmanager_bin=dies)
    stack = LocalStack(config)

    with pytest.raises(PartFailed) as failure:
        stack.up()

    assert failure.value.part == "alertmanager"
    assert "exited before it was ready" in failure.value.reason
    assert str(stack_dir / "logs" / "alertmanager.log") in str(failure.value)
    assert not _processes_mentioning(f"{stack_dir}/")
    assert stack.state() is None


def test_stopping_a_directory_without_a_stack_does_nothing(stack_dir: Path) -> None:
    assert LocalStack(StackConfig(stack_dir=stack_dir)).down() == []
