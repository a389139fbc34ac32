"""Ingest settings, read once from `TOLLGATE_*` variables and validated."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from services.core import topics
from services.core.errors import SettingsError
from services.core.security import KafkaSecurity
from services.core.settings import bootstrap_servers, integer, number, tokens_file
from services.serving.limits import HttpLimits

_TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
_COMPRESSIONS = ("", "gzip", "snappy", "lz4", "zstd")
# More processes than this on one host is a sizing mistake: run more replicas instead.
MAX_WORKERS = 64


@dataclass(frozen=True, slots=True)
class IngestSettings:
    """Everything the ingest service needs; build it with `from_env`."""

    kafka_bootstrap: str
    tokens_file: Path
    host: str = "127.0.0.1"
    port: int = 8080
    metrics_port: int = 9101
    max_batch: int = 1000
    max_bytes: int = 1_048_576
    produce_timeout_seconds: float = 5.0
    retry_after_seconds: int = 2
    # Event times further ahead are refused: a skewed gateway clock would bill a future month.
    max_future_seconds: int = 300
    # Older event times are refused (400 naming `time`): 35 days covers replaying last month. Tighter than
    # the processor's own bound (TOLLGATE_PROCESSOR_MAX_EVENT_AGE_SECONDS), so what ingest accepts it counts.
    max_event_age_seconds: int = 3_024_000
    topic: str = topics.API_CALLS
    compression: str = ""
    # TLS/SASL towards Kafka (`TOLLGATE_KAFKA_SECURITY_PROTOCOL`, ...); its repr never shows a secret.
    kafka_security: KafkaSecurity = field(default_factory=KafkaSecurity)
    # Header and body read timeouts, connection limit (`TOLLGATE_INGEST_HEADER_TIMEOUT_SECONDS`, ...).
    http: HttpLimits = field(default_factory=HttpLimits)
    # Processes serving the port (SO_REUSEPORT), each with its own Kafka producer; 1 = this process alone.
    workers: int = 1

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> IngestSettings:
        """Read and validate; SettingsError names the first bad variable."""
        settings = cls(
            kafka_bootstrap=bootstrap_servers(environ),
            tokens_file=tokens_file(environ),
            host=environ.get("TOLLGATE_INGEST_HOST", "").strip() or "127.0.0.1",
            port=integer(environ, "TOLLGATE_INGEST_PORT", 8080, 1, 65535),
            metrics_port=integer(environ, "TOLLGATE_INGEST_METRICS_PORT", 9101, 1, 65535),
            max_batch=integer(environ, "TOLLGATE_INGEST_MAX_BATCH", 1000, 1, 100_000),
            max_bytes=integer(environ, "TOLLGATE_INGEST_MAX_BYTES", 1_048_576, 1024, 64 * 1_048_576),
            produce_timeout_seconds=number(environ, "TOLLGATE_INGEST_PRODUCE_TIMEOUT_SECONDS", 5.0, 0.1),
            retry_after_seconds=integer(environ, "TOLLGATE_INGEST_RETRY_AFTER_SECONDS", 2, 1, 3600),
            max_future_seconds=integer(environ, "TOLLGATE_INGEST_MAX_FUTURE_SECONDS", 300, 0, 366 * 86400),
            max_event_age_seconds=integer(
                environ, "TOLLGATE_INGEST_MAX_EVENT_AGE_SECONDS", 3_024_000, 60, 100 * 366 * 86400
            ),
            topic=environ.get("TOLLGATE_INGEST_TOPIC", "").strip() or topics.API_CALLS,
            compression=environ.get("TOLLGATE_INGEST_COMPRESSION", "").strip().lower(),
            kafka_security=KafkaSecurity.from_env(environ),
            http=HttpLimits.from_env(environ, "ingest"),
            workers=integer(environ, "TOLLGATE_INGEST_WORKERS", 1, 1, MAX_WORKERS),
        )
        settings.check()
        return settings

    def check(self) -> None:
        """Refuse combinations no variable check alone can see."""
        if self.port == self.metrics_port:
            raise SettingsError("TOLLGATE_INGEST_PORT and TOLLGATE_INGEST_METRICS_PORT must differ")
        if not _TOPIC.match(self.topic):
            raise SettingsError(f"TOLLGATE_INGEST_TOPIC is not a valid Kafka topic name: {self.topic!r}")
        if self.compression not in _COMPRESSIONS:
            raise SettingsError(f"TOLLGATE_INGEST_COMPRESSION must be one of {_COMPRESSIONS[1:]} or empty")
