"""A throwaway local stack for the tiers' session fixtures (tests/conftest.py puts tests/ on sys.path)."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from services.stack import LocalStack, StackConfig, StackError, StackInfo
from services.stack.kafka import install_jars


@contextlib.contextmanager
def throwaway_stack(
    prefix: str, unavailable: Callable[[StackError], object]
) -> Iterator[tuple[LocalStack, StackInfo]]:
    """A LocalStack in a new temporary directory, stopped and removed after; `unavailable` if it fails."""
    # The temporary directory (not the repo's), because the postgres user must reach the cluster's files.
    stack_dir = Path(tempfile.mkdtemp(prefix=prefix))
    stack = LocalStack(StackConfig(stack_dir=stack_dir))
    try:
        install_jars(stack.config.libs_dir, stack.config.kafka_pom)
        info = stack.up()
    except StackError as exc:
        stack.down()
        unavailable(exc)  # fails or skips the test
        raise
    try:
        yield stack, info
    finally:
        stack.down()
        if not os.environ.get("TOLLGATE_KEEP_STACK"):
            shutil.rmtree(stack_dir, ignore_errors=True)
