"""Ledger settings, read once from `TOLLGATE_*` variables and validated."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from services.core import topics
from services.core.errors import SettingsError
from services.core.security import KafkaSecurity
from services.core.settings import bootstrap_servers, database_url, integer, number, tokens_file
from services.ledger.domain.catalogue import DEFAULT_CATALOGUE
from services.serving.limits import HttpLimits

DEFAULT_APP_ROLE = "tollgate_app"
_TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
_MONTH = re.compile(r"^[0-9]{4}-(0[1-9]|1[0-2])\Z")
_BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def role_of(url: str, default: str = DEFAULT_APP_ROLE) -> str:
    """The login role a PostgreSQL URL connects as."""
    return unquote(urlsplit(url).username or "") or default


@dataclass(frozen=True, slots=True)
class LedgerSettings:
    """Everything the ledger service needs; build it with `from_env`."""

    kafka_bootstrap: str
    app_database_url: str
    tokens_file: Path
    # The owner role migrates; optional when migrations run elsewhere (`tollgate ledger migrate`).
    owner_database_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8081
    metrics_port: int = 9103
    invoice_grace_hours: int = 72
    invoice_interval_seconds: float = 300.0
    # The first month the periodic invoicer considers (`YYYY-MM`); default: the month of the first usage.
    billing_start: str | None = None
    topic: str = topics.BILLABLE
    dlq_topic: str = topics.BILLABLE_DLQ
    consumer_group: str = "tollgate-ledger"
    batch_max: int = 10_000  # rows per transaction; bigger batches mean fewer commits and round trips
    poll_timeout_ms: int = 500
    # None: the instances of `consumer_group` split the topic's partitions in a Kafka group (billable usage,
    # alerts); a tuple: exactly these, statically, without a group. See adapters/postgres/ownership.py.
    partitions: tuple[int, ...] | None = None
    # The group's session timeout: a killed instance's partitions move after it; a batch must end within it.
    session_timeout_ms: int = 10_000
    backoff_max_seconds: float = 30.0
    pool_size: int = 8
    # TLS/SASL towards Kafka for the fetcher and the dead-letter producer; its repr never shows a secret.
    kafka_security: KafkaSecurity = field(default_factory=KafkaSecurity)
    # Header and body read timeouts, connection limit (`TOLLGATE_LEDGER_HEADER_TIMEOUT_SECONDS`, ...).
    http: HttpLimits = field(default_factory=HttpLimits)
    # The published tiers that unbilled exposure is priced on (`TOLLGATE_LEDGER_PRICE_CATALOGUE`).
    price_catalogue: Path = DEFAULT_CATALOGUE
    # The alerts the processor raised, kept for the audit report (adapters/kafka/alert_consumer.py);
    # an empty DLQ topic keeps refused alert records in the dead_letters table only.
    consume_alerts: bool = True
    alerts_topic: str = topics.ALERTS
    alerts_dlq_topic: str = ""
    # The agreements (adapters/kafka/agreement_consumer.py): the compacted topic the CLI publishes to.
    consume_agreements: bool = True
    agreements_topic: str = topics.AGREEMENTS
    agreements_dlq_topic: str = ""
    # The audit report as PDF: headless Chromium's print-to-PDF (adapters/pdf.py).
    chromium: str = "chromium"
    pdf_timeout_seconds: float = 60.0

    @property
    def app_role(self) -> str:
        """The service role the grants are for."""
        return role_of(self.app_database_url)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> LedgerSettings:
        """Read and validate; SettingsError names the first bad variable."""
        owner = environ.get("TOLLGATE_DATABASE_URL", "").strip()
        app = environ.get("TOLLGATE_APP_DATABASE_URL", "").strip()
        settings = cls(
            kafka_bootstrap=bootstrap_servers(environ),
            app_database_url=database_url(
                environ, "TOLLGATE_APP_DATABASE_URL" if app else "TOLLGATE_DATABASE_URL"
            ),
            tokens_file=tokens_file(environ),
            owner_database_url=database_url(environ) if owner else None,
            host=(
                environ.get("TOLLGATE_LEDGER_HOST", "").strip()
                or environ.get("TOLLGATE_BIND_HOST", "").strip()
                or "127.0.0.1"
            ),
            port=integer(environ, "TOLLGATE_LEDGER_PORT", 8081, 1, 65535),
            metrics_port=integer(environ, "TOLLGATE_LEDGER_METRICS_PORT", 9103, 1, 65535),
            invoice_grace_hours=integer(environ, "TOLLGATE_LEDGER_INVOICE_GRACE_HOURS", 72, 0, 24 * 366),
            invoice_interval_seconds=number(environ, "TOLLGATE_LEDGER_INVOICE_INTERVAL_SECONDS", 300.0, 1.0),
            billing_start=environ.get("TOLLGATE_LEDGER_BILLING_START", "").strip() or None,
            topic=environ.get("TOLLGATE_LEDGER_TOPIC", "").strip() or topics.BILLABLE,
            dlq_topic=environ.get("TOLLGATE_LEDGER_DLQ_TOPIC", "").strip() or topics.BILLABLE_DLQ,
            consumer_group=environ.get("TOLLGATE_LEDGER_CONSUMER_GROUP", "").strip() or "tollgate-ledger",
            batch_max=integer(environ, "TOLLGATE_LEDGER_BATCH_MAX", 10_000, 1, 100_000),
            poll_timeout_ms=integer(environ, "TOLLGATE_LEDGER_POLL_TIMEOUT_MS", 500, 10, 60_000),
            partitions=_partitions(environ.get("TOLLGATE_LEDGER_PARTITIONS", "")),
            session_timeout_ms=integer(environ, "TOLLGATE_LEDGER_SESSION_TIMEOUT_MS", 10_000, 6_000, 300_000),
            backoff_max_seconds=number(environ, "TOLLGATE_LEDGER_BACKOFF_MAX_SECONDS", 30.0, 0.1),
            pool_size=integer(environ, "TOLLGATE_LEDGER_POOL_SIZE", 8, 1, 100),
            kafka_security=KafkaSecurity.from_env(environ),
            http=HttpLimits.from_env(environ, "ledger"),
            price_catalogue=Path(
                environ.get("TOLLGATE_LEDGER_PRICE_CATALOGUE", "").strip() or DEFAULT_CATALOGUE
            ),
        )
        settings = dataclasses.replace(settings, **_alert_and_pdf(environ), **_agreements(environ))
        settings.check()
        return settings

    def check(self) -> None:
        """Refuse combinations no variable check alone can see."""
        if self.port == self.metrics_port:
            raise SettingsError("TOLLGATE_LEDGER_PORT and TOLLGATE_LEDGER_METRICS_PORT must differ")
        for name, topic in (
            ("TOLLGATE_LEDGER_TOPIC", self.topic),
            ("TOLLGATE_LEDGER_DLQ_TOPIC", self.dlq_topic),
            ("TOLLGATE_LEDGER_ALERTS_TOPIC", self.alerts_topic),
            ("TOLLGATE_LEDGER_AGREEMENTS_TOPIC", self.agreements_topic),
            ("TOLLGATE_LEDGER_ALERTS_DLQ_TOPIC", self.alerts_dlq_topic),
            ("TOLLGATE_LEDGER_AGREEMENTS_DLQ_TOPIC", self.agreements_dlq_topic),
        ):
            optional = name in ("TOLLGATE_LEDGER_ALERTS_DLQ_TOPIC", "TOLLGATE_LEDGER_AGREEMENTS_DLQ_TOPIC")
            if not (optional and not topic) and not _TOPIC.match(topic):
                raise SettingsError(f"{name} is not a valid Kafka topic name: {topic!r}")
        if self.billing_start is not None and not _MONTH.match(self.billing_start):
            raise SettingsError("TOLLGATE_LEDGER_BILLING_START must be YYYY-MM")
        if not self.price_catalogue.is_file():
            raise SettingsError(f"TOLLGATE_LEDGER_PRICE_CATALOGUE is not a file: {self.price_catalogue}")


def _boolean(environ: Mapping[str, str], name: str) -> bool:
    value = environ.get(name, "").strip().lower() or "true"
    if value not in _BOOLEANS:
        raise SettingsError(f"{name} must be true or false, got {value!r}")
    return _BOOLEANS[value]


def _agreements(environ: Mapping[str, str]) -> dict[str, Any]:
    return {
        "consume_agreements": _boolean(environ, "TOLLGATE_LEDGER_CONSUME_AGREEMENTS"),
        "agreements_topic": environ.get("TOLLGATE_LEDGER_AGREEMENTS_TOPIC", "").strip() or topics.AGREEMENTS,
        "agreements_dlq_topic": environ.get("TOLLGATE_LEDGER_AGREEMENTS_DLQ_TOPIC", "").strip(),
    }


def _alert_and_pdf(environ: Mapping[str, str]) -> dict[str, Any]:
    return {
        "consume_alerts": _boolean(environ, "TOLLGATE_LEDGER_CONSUME_ALERTS"),
        "alerts_topic": environ.get("TOLLGATE_LEDGER_ALERTS_TOPIC", "").strip() or topics.ALERTS,
        "alerts_dlq_topic": environ.get("TOLLGATE_LEDGER_ALERTS_DLQ_TOPIC", "").strip(),
        "chromium": environ.get("TOLLGATE_LEDGER_CHROMIUM", "").strip() or "chromium",
        "pdf_timeout_seconds": number(environ, "TOLLGATE_LEDGER_PDF_TIMEOUT_SECONDS", 60.0, 1.0),
    }


def _partitions(raw: str) -> tuple[int, ...] | None:
    if not raw.strip():
        return None
    try:
        found = tuple(sorted({int(part) for part in raw.split(",") if part.strip()}))
    except ValueError as exc:
        raise SettingsError(
            f"TOLLGATE_LEDGER_PARTITIONS must be comma-separated integers, got {raw!r}"
        ) from exc
    if not found or found[0] < 0:
        raise SettingsError("TOLLGATE_LEDGER_PARTITIONS must list partitions >= 0")
    return found
