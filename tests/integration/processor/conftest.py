"""Fixtures for the processor's integration tests: a broker address and isolated topics per test."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from processor_support import Topics, create_topics, delete_topics


@pytest.fixture(scope="session")
def broker(request: pytest.FixtureRequest) -> str:
    """The stack's Kafka (the `kafka_bootstrap` session fixture), else $TOLLGATE_KAFKA_BOOTSTRAP."""
    try:
        return str(request.getfixturevalue("kafka_bootstrap"))
    except pytest.FixtureLookupError:
        address = os.environ.get("TOLLGATE_KAFKA_BOOTSTRAP", "")
        if not address:
            pytest.skip("no Kafka: start `tollgate stack up` or set TOLLGATE_KAFKA_BOOTSTRAP")
        return address


@pytest.fixture
def topics(broker: str, request: pytest.FixtureRequest) -> Iterator[Topics]:
    """Fresh topics shaped like DESIGN's (6 partitions, compacted agreements), removed afterwards."""
    created = create_topics(broker, request.node.name)
    yield created
    delete_topics(broker, created)
