"""A Kafka broker that accepts only TLS clients (SASL_SSL and mutual TLS), started once for this package."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.stack import StackConfig, StackError
from services.stack.kafka import install_jars
from services.stack.kafka_tls import SecureBroker, start_secure
from services.stack.process import stop_pid


@pytest.fixture(scope="session")
def secure_kafka() -> Iterator[SecureBroker]:
    """A throwaway TLS-only broker with the contract's topics, ready: its log said so, topics have leaders."""
    root = Path(tempfile.mkdtemp(prefix="tollgate-tls-kafka-"))
    config = StackConfig(stack_dir=root, partitions=2)
    pids: list[int] = []
    try:
        install_jars(config.libs_dir, config.kafka_pom)
        broker = start_secure(config, pids.append)
    except StackError as exc:
        for pid in pids:
            stop_pid(pid, grace=10)
        shutil.rmtree(root, ignore_errors=True)
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"the TLS broker did not start: {exc}")
        pytest.skip(f"the TLS broker did not start: {exc}")
    try:
        yield broker
    finally:
        stop_pid(broker.pid, grace=10)
        if not os.environ.get("TOLLGATE_KEEP_STACK"):
            shutil.rmtree(root, ignore_errors=True)
