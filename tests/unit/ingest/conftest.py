"""Fixtures for ingest unit tests: an app on an in-memory publisher and token store, at a fixed time."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from ingest_support import api_call_event
from starlette.testclient import TestClient

from services.core.clock import FixedClock
from services.core.tokens import InMemoryTokenStore
from services.ingest.app import create_app
from services.ingest.metrics import IngestMetrics
from services.ingest.publisher import InMemoryPublisher
from services.ingest.settings import IngestSettings
from services.ingest.validation import BATCH, SINGLE

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def _api_call(
    n: int = 0, source: str = "gateway-a", licensee: str = "omnisoft", **changes: Any
) -> dict[str, Any]:
    """A valid `io.tollgate.api.call.v1` envelope, with `changes` applied (see `set_path`)."""
    event = api_call_event(f"call-{n:06d}", source=source, licensee=licensee, records=25, size=22500)
    for path, value in changes.items():
        set_path(event, path, value)
    return event


def set_path(event: dict[str, Any], path: str, value: Any) -> None:
    """Set (or with DELETE, remove) a field given as `data__requester__org_id`."""
    *parents, last = path.split("__")
    target = event
    for part in parents:
        target = target[part]
    if value == DELETE:
        del target[last]
    else:
        target[last] = value


DELETE = "<delete>"


@dataclass
class Ingest:
    """An ingest app under test with the doubles it talks to."""

    client: TestClient
    publisher: InMemoryPublisher
    tokens: InMemoryTokenStore
    metrics: IngestMetrics
    token: str
    settings: IngestSettings

    def post(self, body: Any, content_type: str = BATCH, token: str | None = None, **kwargs: Any) -> Any:
        """POST /v1/events with the ingest token unless another is given."""
        headers = {"Content-Type": content_type, "Authorization": f"Bearer {token or self.token}"}
        headers.update(kwargs.pop("headers", {}))
        if isinstance(body, list | dict):
            return self.client.post("/v1/events", json=body, headers=headers, **kwargs)
        return self.client.post("/v1/events", content=body, headers=headers, **kwargs)

    def post_one(self, event: Any, **kwargs: Any) -> Any:
        """POST one event in structured mode."""
        return self.post(event, content_type=SINGLE, **kwargs)

    def sample(self, name: str, labels: dict[str, str] | None = None) -> float:
        """A metric sample's current value (0 when absent)."""
        return self.metrics.registry.get_sample_value(name, labels or {}) or 0.0


def _make_ingest(tmp_path: Path, **settings: Any) -> Ingest:
    """Build an app with small, explicit limits."""
    config = IngestSettings(kafka_bootstrap="127.0.0.1:9", tokens_file=tmp_path / "tokens.json", **settings)
    tokens = InMemoryTokenStore()
    token = tokens.create("gateway", "ingest")
    publisher = InMemoryPublisher()
    metrics = IngestMetrics()
    app = create_app(config, publisher, tokens, clock=FixedClock(NOW), metrics=metrics)
    return Ingest(TestClient(app), publisher, tokens, metrics, token, config)


@pytest.fixture
def ingest(tmp_path: Path) -> Iterator[Ingest]:
    """The app with default limits (1000 events, 1 MiB)."""
    built = _make_ingest(tmp_path)
    yield built
    built.client.close()


@pytest.fixture
def make_ingest(tmp_path: Path) -> Iterator[Callable[..., Ingest]]:
    """Build apps with other settings (limits, clock skew); closed after the test."""
    built: list[Ingest] = []

    def make(**settings: Any) -> Ingest:
        built.append(_make_ingest(tmp_path, **settings))
        return built[-1]

    yield make
    for item in built:
        item.client.close()


@pytest.fixture
def api_call() -> Callable[..., dict[str, Any]]:
    """Factory of valid events: `api_call(n, source=..., licensee=..., data__records=-1)`."""
    return _api_call


@pytest.fixture
def event() -> dict[str, Any]:
    """A fresh valid event."""
    return copy.deepcopy(_api_call())
