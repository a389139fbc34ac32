"""The e2e tier runs the whole system on a stack of its own, so nothing from other tiers leaks in."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.demo import story
from services.demo.scenario import demo_calls
from services.stack import LocalStack, StackConfig, StackError, StackInfo
from services.stack.kafka import install_jars


@contextlib.contextmanager
def private_stack() -> Iterator[tuple[LocalStack, StackInfo]]:
    """A throwaway local stack in /tmp (the postgres user must reach it), stopped and removed after."""
    stack_dir = Path(tempfile.mkdtemp(prefix="tollgate-e2e-"))
    stack = LocalStack(StackConfig(stack_dir=stack_dir))
    try:
        install_jars(stack.config.libs_dir, stack.config.kafka_pom)
        info = stack.up()
    except StackError as exc:
        stack.down()
        pytest.fail(f"the e2e stack did not start: {exc}")
    try:
        yield stack, info
    finally:
        stack.down()
        if not os.environ.get("TOLLGATE_KEEP_STACK"):
            shutil.rmtree(stack_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def e2e_stack() -> Iterator[tuple[LocalStack, StackInfo]]:
    """The e2e tier's own stack."""
    with private_stack() as pair:
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
