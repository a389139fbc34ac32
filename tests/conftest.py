"""Session fixtures for the real stack: Kafka, PostgreSQL, Prometheus, Alertmanager.

Where the stack comes from, first match wins:
1. TOLLGATE_KAFKA_BOOTSTRAP (and the other TOLLGATE_* variables) set: a stack someone runs, e.g.
   `eval "$(tollgate stack env)"` after `tollgate stack up`;
2. a Docker engine answers `docker info`: testcontainers;
3. otherwise a throwaway `LocalStack` in a temporary directory, stopped at the end of the session.
Every fixture is lazy: tests that ask for none of them (tests/unit) start nothing.
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from stack_support import throwaway_stack

from services.stack import StackError, StackInfo
from services.stack.config import REPO_ROOT
from services.stack.containers import ContainerStack, docker_available
from services.stack.kafka import create_topics

IN_CI = os.environ.get("CI", "").lower() == "true"


def _unavailable(message: str) -> None:
    """Fail in CI (the stack must be there), skip on a developer's machine that lacks it."""
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def _local_stack() -> Iterator[StackInfo]:
    def unavailable(exc: StackError) -> None:
        _unavailable(f"the local stack did not start ({exc}); `make install` installs what it needs")

    with throwaway_stack("tollgate-stack-", unavailable) as (_, info):
        yield info


@pytest.fixture(scope="session")
def stack_info() -> Iterator[StackInfo]:
    """How to reach the session's stack: `.kafka_bootstrap`, `.database_url`, `.app_database_url`,
    `.prometheus_url`, `.alertmanager_url`, `.env()` and `.register_scrape_target(job, "host:port")`."""
    from_env = StackInfo.from_env(os.environ)
    if from_env is not None:
        yield from_env
        return
    if docker_available():
        containers = ContainerStack()
        try:
            yield containers.up()
        finally:
            containers.down()
        return
    yield from _local_stack()


def _stack_fact(name: str, doc: str) -> Any:
    """A session fixture `name`: the attribute of that name of the session's `StackInfo`."""

    def fact(stack_info: StackInfo) -> Any:
        return getattr(stack_info, name)

    fact.__doc__ = doc
    return pytest.fixture(scope="session", name=name)(fact)


kafka_bootstrap = _stack_fact(
    "kafka_bootstrap", "Bootstrap servers of the session's Kafka, e.g. `127.0.0.1:40123`."
)
database_url = _stack_fact(
    "database_url", "PostgreSQL URL of the owner/migrator role `tollgate_owner` on database `tollgate`."
)
app_database_url = _stack_fact(
    "app_database_url", "PostgreSQL URL of the service role `tollgate_app` on database `tollgate`."
)
prometheus_url = _stack_fact(
    "prometheus_url", "Base URL of the session's Prometheus, e.g. `http://127.0.0.1:40124`."
)
alertmanager_url = _stack_fact("alertmanager_url", "Base URL of the session's Alertmanager.")


@pytest.fixture(scope="session")
def stack_env(stack_info: StackInfo) -> dict[str, str]:
    """`os.environ` plus the TOLLGATE_* variables of the session's stack, for service subprocesses."""
    return {**os.environ, **stack_info.env()}


@pytest.fixture
def new_topic(kafka_bootstrap: str, request: pytest.FixtureRequest) -> Iterator[Callable[..., str]]:
    """Factory: `new_topic(partitions=6, compacted=False)` makes a uniquely named topic, deleted after."""
    created: list[str] = []
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", request.node.name)[:150]

    def make(partitions: int = 6, compacted: bool = False, suffix: str = "") -> str:
        name = f"test.{stem}{'.' + suffix if suffix else ''}.{uuid.uuid4().hex[:8]}"
        configs = {"cleanup.policy": "compact"} if compacted else {}
        create_topics(kafka_bootstrap, partitions, {name: {"partitions": partitions, "configs": configs}})
        created.append(name)
        return name

    yield make
    if created:
        _delete_topics(kafka_bootstrap, created)


def _delete_topics(bootstrap: str, names: list[str]) -> None:
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="tollgate-tests")
    try:  # best effort: the throwaway broker goes away anyway
        with contextlib.suppress(Exception):
            admin.delete_topics(names, timeout_ms=10000)
    finally:
        admin.close()


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository's root directory."""
    return REPO_ROOT
