"""The processor's settings, read from `TOLLGATE_*` environment variables."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from services.core import topics
from services.core.errors import SettingsError
from services.core.security import KafkaSecurity
from services.core.settings import bootstrap_servers, integer, number
from services.processor.domain.step import Policy
from services.processor.pace import Pace

DAY = 86_400.0


# Outputs become visible to read_committed readers when their checkpoint commits: this bounds event-to-alert
# latency, and each commit costs a transaction round trip. 0.05 s against 0.1 s cut the event-to-alert p50
# by about a third for about a tenth more CPU at half the drain rate (BENCHMARKS.md); a worker behind its
# input commits every catch_up_commit_interval_seconds instead.
COMMIT_INTERVAL_SECONDS = 0.05


@dataclass(frozen=True, slots=True)
class ProcessorSettings:
    """Everything a processor worker needs; `from_env` validates it."""

    kafka_bootstrap: str
    app_id: str = "tollgate-processor"
    metrics_port: int = 9102
    data_dir: Path = Path("var/processor")
    lateness_seconds: float = 7 * DAY
    dedupe_horizon_seconds: float = 7 * DAY
    max_age_seconds: float = 400 * DAY
    max_lead_seconds: float = 300.0
    metrics_max_licensees: int = 1000
    agreements_timeout_seconds: float = 60.0
    input_topic: str = topics.API_CALLS
    dlq_topic: str = topics.API_CALLS_DLQ
    agreements_topic: str = topics.AGREEMENTS
    alerts_topic: str = topics.ALERTS
    billable_topic: str = topics.BILLABLE
    loglevel: str = "info"
    commit_interval_seconds: float = COMMIT_INTERVAL_SECONDS
    # While the worker is more than `catch_up_lag_seconds` behind its input, checkpoints stay open this
    # long instead (pace.py): fewer, larger transactions while every alert is late by the backlog anyway.
    catch_up_commit_interval_seconds: float = 1.0
    catch_up_lag_seconds: float = 2.0
    producer_linger_ms: int = 5
    producer_compression: str | None = "zstd"
    session_timeout_seconds: float = 10.0
    transaction_timeout_seconds: float = 10.0
    # A licensee's open usage buckets leave as billable deltas once the oldest is this old (processing
    # time): the ledger's rows per bucket-hour are about 3600 / this (README "Billable usage").
    usage_flush_seconds: float = 300.0
    # quix's TTL sweep starts at the last one's end (sweep_floor.py); off gives quix's walk from b"".
    sweep_from_floor: bool = True
    # TLS/SASL towards Kafka: quix-streams (librdkafka) and the agreements view; repr hides secrets.
    kafka_security: KafkaSecurity = field(default_factory=KafkaSecurity)

    @property
    def heartbeat_interval_seconds(self) -> float:
        """A third of the session timeout (Kafka's rule of thumb), at most 3 s."""
        return min(3.0, self.session_timeout_seconds / 3)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> ProcessorSettings:
        """Read and validate the settings; raise SettingsError naming the bad variable."""
        lateness = number(environ, "TOLLGATE_PROCESSOR_LATENESS_SECONDS", 7 * DAY)
        horizon = number(environ, "TOLLGATE_PROCESSOR_DEDUPE_HORIZON_SECONDS", 7 * DAY)
        if horizon < lateness:
            # A duplicate older than the horizon but inside lateness would be counted twice.
            raise SettingsError("TOLLGATE_PROCESSOR_DEDUPE_HORIZON_SECONDS must be at least the lateness")
        max_age = number(environ, "TOLLGATE_PROCESSOR_MAX_EVENT_AGE_SECONDS", 400 * DAY, 60.0)
        if max_age < lateness:
            raise SettingsError("TOLLGATE_PROCESSOR_MAX_EVENT_AGE_SECONDS must be at least the lateness")
        app_id = environ.get("TOLLGATE_PROCESSOR_APP_ID", "").strip() or "tollgate-processor"
        commit_interval = number(
            environ, "TOLLGATE_PROCESSOR_COMMIT_INTERVAL_SECONDS", COMMIT_INTERVAL_SECONDS, 0.01
        )
        transaction_timeout = number(environ, "TOLLGATE_PROCESSOR_TRANSACTION_TIMEOUT_SECONDS", 10.0, 1.0)
        return cls(
            kafka_bootstrap=bootstrap_servers(environ),
            app_id=app_id,
            metrics_port=integer(environ, "TOLLGATE_PROCESSOR_METRICS_PORT", 9102, 0, 65535),
            data_dir=Path(environ.get("TOLLGATE_PROCESSOR_DATA_DIR", "").strip() or "var/processor"),
            lateness_seconds=lateness,
            dedupe_horizon_seconds=horizon,
            max_age_seconds=max_age,
            max_lead_seconds=number(environ, "TOLLGATE_PROCESSOR_MAX_EVENT_LEAD_SECONDS", 300.0, 0.0),
            metrics_max_licensees=integer(environ, "TOLLGATE_METRICS_MAX_LICENSEES", 1000, 1),
            agreements_timeout_seconds=number(
                environ, "TOLLGATE_PROCESSOR_AGREEMENTS_TIMEOUT_SECONDS", 60.0, 1.0
            ),
            input_topic=_topic(environ, "INPUT", topics.API_CALLS),
            dlq_topic=_topic(environ, "DLQ", topics.API_CALLS_DLQ),
            agreements_topic=_topic(environ, "AGREEMENTS", topics.AGREEMENTS),
            alerts_topic=_topic(environ, "ALERTS", topics.ALERTS),
            billable_topic=_topic(environ, "BILLABLE", topics.BILLABLE),
            loglevel=environ.get("TOLLGATE_LOG_LEVEL", "info").strip().lower() or "info",
            commit_interval_seconds=commit_interval,
            catch_up_commit_interval_seconds=_catch_up(environ, commit_interval, transaction_timeout),
            catch_up_lag_seconds=number(environ, "TOLLGATE_PROCESSOR_CATCH_UP_LAG_SECONDS", 2.0, 0.0),
            producer_linger_ms=integer(environ, "TOLLGATE_PROCESSOR_PRODUCER_LINGER_MS", 5, 0, 1000),
            producer_compression=_compression(environ),
            # The broker refuses sessions outside group.{min,max}.session.timeout.ms (6 s and 30 min).
            session_timeout_seconds=number(environ, "TOLLGATE_PROCESSOR_SESSION_TIMEOUT_SECONDS", 10.0, 6.0),
            transaction_timeout_seconds=transaction_timeout,
            usage_flush_seconds=_usage_flush(environ),
            sweep_from_floor=_switch(environ, "TOLLGATE_PROCESSOR_SWEEP_FROM_FLOOR", True),
            kafka_security=KafkaSecurity.from_env(environ),
        )

    def pace(self) -> Pace:
        """The checkpoint intervals, kept up and catching up."""
        return Pace(
            self.commit_interval_seconds, self.catch_up_commit_interval_seconds, self.catch_up_lag_seconds
        )

    def policy(self) -> Policy:
        """The domain's bounds."""
        return Policy(
            lateness=timedelta(seconds=self.lateness_seconds),
            dedupe_horizon=timedelta(seconds=self.dedupe_horizon_seconds),
            max_age=timedelta(seconds=self.max_age_seconds),
            max_lead=timedelta(seconds=self.max_lead_seconds),
        )


def _catch_up(environ: Mapping[str, str], interval: float, transaction_timeout: float) -> float:
    name = "TOLLGATE_PROCESSOR_CATCH_UP_COMMIT_INTERVAL_SECONDS"
    seconds = number(environ, name, max(1.0, interval), 0.01)
    if seconds < interval:
        raise SettingsError(f"{name} must be at least TOLLGATE_PROCESSOR_COMMIT_INTERVAL_SECONDS")
    if seconds > max(interval, transaction_timeout / 2):
        # The coordinator aborts a transaction open longer than its timeout; leave room for the commit.
        raise SettingsError(f"{name} must be at most half of TOLLGATE_PROCESSOR_TRANSACTION_TIMEOUT_SECONDS")
    return seconds


def _usage_flush(environ: Mapping[str, str]) -> float:
    seconds = number(environ, "TOLLGATE_PROCESSOR_USAGE_FLUSH_SECONDS", 300.0, 0.1)
    if seconds > 3600:
        # Finance would wait longer than an hour bucket to see usage it could already bill.
        raise SettingsError("TOLLGATE_PROCESSOR_USAGE_FLUSH_SECONDS must be at most 3600")
    return seconds


def _switch(environ: Mapping[str, str], name: str, default: bool) -> bool:
    value = environ.get(name, "").strip().lower()
    if not value:
        return default
    if value not in ("true", "false", "1", "0", "on", "off"):
        raise SettingsError(f"{name} must be true or false")
    return value in ("true", "1", "on")


def _compression(environ: Mapping[str, str]) -> str | None:
    # zstd: the outputs are JSON, which compresses well for little CPU.
    value = environ.get("TOLLGATE_PROCESSOR_PRODUCER_COMPRESSION", "zstd").strip().lower()
    if value in ("", "none"):
        return None
    if value not in ("gzip", "lz4", "snappy", "zstd"):
        raise SettingsError("TOLLGATE_PROCESSOR_PRODUCER_COMPRESSION must be none, gzip, lz4, snappy or zstd")
    return value


def _topic(environ: Mapping[str, str], name: str, default: str) -> str:
    # Overrides exist for test isolation (fresh topics per test); production uses the DESIGN names.
    return environ.get(f"TOLLGATE_PROCESSOR_TOPIC_{name}", "").strip() or default
