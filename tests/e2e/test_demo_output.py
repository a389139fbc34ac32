"""`make run` prints the story's tables, not the HTTP and Kafka clients' INFO lines between them."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from demo_expectations import HALCYON_TABLE

from services.cli.demo import routed_logs, tell_story
from services.demo import story

TABLES = ("== Alerts raised", "== Usage against caps", "== Licensee group halcyon, 2026-10", "== Invoices ==",
          "== Unbilled exposure, 2026-10", "== Government access, omnisoft ==")


@pytest.fixture
def terminal_log() -> Iterator[io.StringIO]:
    """What the root logger would write to the terminal at INFO, as `tollgate` configures it."""
    stream, root = io.StringIO(), logging.getLogger()
    handler, level = logging.StreamHandler(stream), root.level
    # A fresh `tollgate` process leaves the client loggers at their defaults; earlier tests in this
    # session may have quietened them.
    clients = {name: logging.getLogger(name).level for name in ("httpx", "httpcore", "kafka")}
    for name in clients:
        logging.getLogger(name).setLevel(logging.NOTSET)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield stream
    root.removeHandler(handler)
    root.setLevel(level)
    for name, previous in clients.items():
        logging.getLogger(name).setLevel(previous)


def test_without_routing_the_clients_log_a_line_per_request_to_the_terminal(
    demo_run: story.DemoRun, terminal_log: io.StringIO
) -> None:
    tell_story(demo_run)
    assert "HTTP Request:" in terminal_log.getvalue()


def test_the_story_prints_its_tables_and_the_client_logs_go_to_a_file(
    demo_run: story.DemoRun, terminal_log: io.StringIO, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with routed_logs(tmp_path / "clients.log") as path:
        tell_story(demo_run)
    printed = capsys.readouterr()
    assert [title in printed.out for title in TABLES] == [True] * len(TABLES)
    assert HALCYON_TABLE in printed.out
    assert terminal_log.getvalue() == ""
    assert " INFO " not in printed.err
    logged = path.read_text(encoding="utf-8")
    assert "HTTP Request: POST" in logged and " INFO kafka" in logged
