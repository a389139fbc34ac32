"""Fixtures for the ledger's integration tests: an isolated, migrated schema and a billable topic per test."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from ledger_support import LedgerDb, ledger_schema


@pytest.fixture
def ledger_db(database_url: str, app_database_url: str, request: pytest.FixtureRequest) -> Iterator[LedgerDb]:
    """A fresh schema in the stack's database, migrated, reachable as owner and as the service role."""
    with ledger_schema(database_url, app_database_url, request.node.name.split("_")[-1]) as db:
        yield db


@pytest.fixture
def billable_topics(new_topic: Callable[..., str]) -> tuple[str, str]:
    """A fresh 6-partition billable topic and its dead-letter topic."""
    return new_topic(partitions=6, suffix="billable"), new_topic(partitions=1, suffix="dlq")
