"""The e2e tier runs the whole system on a stack of its own, so nothing from other tiers leaks in."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from stack_support import throwaway_stack

from services.demo import story
from services.demo.scenario import demo_calls
from services.stack import LocalStack, StackError, StackInfo


@pytest.fixture(scope="session")
def e2e_stack() -> Iterator[tuple[LocalStack, StackInfo]]:
    """The e2e tier's own stack."""

    def unavailable(exc: StackError) -> None:
        pytest.fail(f"the e2e stack did not start: {exc}")

    with throwaway_stack("tollgate-e2e-", unavailable) as pair:
        yield pair


@pytest.fixture(scope="session")
def demo_run(e2e_stack: tuple[LocalStack, StackInfo]) -> Iterator[story.DemoRun]:
    """The demo scenario, run once through ingest, processor and ledger as real processes."""
    stack, info = e2e_stack
    run = story.start(info, Path(stack.config.stack_dir) / "demo")
    try:
        story.load_demo_agreements(run)
        accepted = story.replay(run)
        assert accepted == len(demo_calls())
        story.wait_until_settled(run, len(demo_calls()))
        yield run
    finally:
        run.stop()
