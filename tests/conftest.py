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
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from services.stack import LocalStack, StackConfig, StackError, StackInfo
from services.stack.config import REPO_ROOT
from services.stack.containers import ContainerStack, docker_available
from services.stack.kafka import create_topics, install_jars

IN_CI = os.environ.get("CI", "").lower() == "true"


def _unavailable(message: str) -> None:
    """Fail in CI (the stack must be there), skip on a developer's machine that lacks it."""
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def _local_stack() -> Iterator[StackInfo]:
    stack_dir = Path(tempfile.mkdtemp(prefix="tollgate-stack-"))
    stack = LocalStack(StackConfig(stack_dir=stack_dir))
    try:
        install_jars(stack.config.libs_dir, stack.config.kafka_pom)
        info = stack.up()
    except StackError as exc:
        stack.down()
        _unavailable(f"the local stack did not start ({exc}); `make install` installs what it needs")
        raise
    try:
        yield info
    finally:
        stack.down()
        if not os.environ.get("TOLLGATE_KEEP_STACK"):
            shutil.rmtree(stack_dir, ignore_errors=True)


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


@pytest.fixture(scope="session")
def kafka_bootstrap(stack_info: StackInfo) -> str:
    """Bootstrap servers of the session's Kafka, e.g. `127.0.0.1:40123`."""
    return stack_info.kafka_bootstrap


@pytest.fixture(scope="session")
def database_url(stack_info: StackInfo) -> str:
    """PostgreSQL URL of the owner/migrator role `tollgate_owner` on database `tollgate`."""
    return stack_info.database_url


@pytest.fixture(scope="session")
def app_database_url(stack_info: StackInfo) -> str:
    """PostgreSQL URL of the service role `tollgate_app` on database `tollgate`."""
    return stack_info.app_database_url


@pytest.fixture(scope="session")
def prometheus_url(stack_info: StackInfo) -> str:
    """Base URL of the session's Prometheus, e.g. `http://127.0.0.1:40124`."""
    return stack_info.prometheus_url


@pytest.fixture(scope="session")
def alertmanager_url(stack_info: StackInfo) -> str:
    """Base URL of the session's Alertmanager."""
    return stack_info.alertmanager_url


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
