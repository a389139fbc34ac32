"""Ingest settings come from TOLLGATE_* variables, with safe defaults, and refuse what cannot work."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.core.errors import SettingsError
from services.ingest.settings import IngestSettings


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    tokens = tmp_path / "tokens.json"
    tokens.write_text('{"tokens": []}')
    return {"TOLLGATE_KAFKA_BOOTSTRAP": "127.0.0.1:9092", "TOLLGATE_TOKENS_FILE": str(tokens)}


def test_defaults_follow_the_contract(env: dict[str, str]) -> None:
    settings = IngestSettings.from_env(env)
    assert (settings.host, settings.max_batch, settings.max_bytes, settings.produce_timeout_seconds) == (
        "127.0.0.1",
        1000,
        1_048_576,
        5.0,
    )
    assert settings.topic == "tollgate.api-calls.v1"


def test_every_variable_is_read(env: dict[str, str]) -> None:
    env.update(
        {
            "TOLLGATE_INGEST_HOST": "192.0.2.1",
            "TOLLGATE_INGEST_PORT": "8001",
            "TOLLGATE_INGEST_METRICS_PORT": "9001",
            "TOLLGATE_INGEST_MAX_BATCH": "10",
            "TOLLGATE_INGEST_MAX_BYTES": "2048",
            "TOLLGATE_INGEST_PRODUCE_TIMEOUT_SECONDS": "1.5",
            "TOLLGATE_INGEST_TOPIC": "test.topic",
            "TOLLGATE_INGEST_COMPRESSION": "gzip",
            "TOLLGATE_INGEST_RETRY_AFTER_SECONDS": "7",
        }
    )
    settings = IngestSettings.from_env(env)
    assert (settings.host, settings.port, settings.metrics_port, settings.max_batch, settings.max_bytes) == (
        "192.0.2.1",
        8001,
        9001,
        10,
        2048,
    )
    assert (
        settings.produce_timeout_seconds,
        settings.topic,
        settings.compression,
        settings.retry_after_seconds,
    ) == (1.5, "test.topic", "gzip", 7)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("TOLLGATE_TOKENS_FILE", "/nonexistent/tokens.json", "does not exist"),
        ("TOLLGATE_TOKENS_FILE", "", "is required"),
        ("TOLLGATE_KAFKA_BOOTSTRAP", "", "is required"),
        ("TOLLGATE_KAFKA_BOOTSTRAP", "localhost", "host:port"),
        ("TOLLGATE_INGEST_PORT", "http", "must be an integer"),
        ("TOLLGATE_INGEST_PORT", "9101", "must differ"),
        ("TOLLGATE_INGEST_MAX_BATCH", "0", "between"),
        ("TOLLGATE_INGEST_MAX_BYTES", "10", "between"),
        ("TOLLGATE_INGEST_PRODUCE_TIMEOUT_SECONDS", "0", "at least"),
        ("TOLLGATE_INGEST_TOPIC", "bad topic", "topic"),
        ("TOLLGATE_INGEST_COMPRESSION", "brotli", "COMPRESSION"),
    ],
)
def test_bad_settings_are_refused_by_name(env: dict[str, str], name: str, value: str, message: str) -> None:
    env[name] = value
    with pytest.raises(SettingsError, match=message):
        IngestSettings.from_env(env)
