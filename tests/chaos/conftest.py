"""The chaos tier: each test runs the whole system on a private stack and injects one fault mid-stream."""

from __future__ import annotations

import pytest
from support import RESULTS, results_table, write_results


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "chaos: injects a fault into the whole stack and checks exact totals")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the fault matrix and write it to bench-results/chaos.md."""
    if not RESULTS:
        return
    path = write_results()
    terminalreporter.section("chaos: fault matrix")
    terminalreporter.write(results_table())
    terminalreporter.write_line(f"written to {path}")
