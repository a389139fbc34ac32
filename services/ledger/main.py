"""`tollgate serve ledger`: migrations, the consumer threads (billable usage, alerts, agreements), periodic
invoicing and the finance/audit API."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from datetime import timedelta

import uvicorn
from prometheus_client import start_http_server

from services.core.clock import Clock, SystemClock
from services.core.month import Month
from services.core.shutdown import keep_exit_graceful
from services.core.tokens import FileTokenStore
from services.ledger.adapters.http.api import create_app
from services.ledger.adapters.kafka.agreement_consumer import AgreementConsumer
from services.ledger.adapters.kafka.alert_consumer import AlertConsumer
from services.ledger.adapters.kafka.consumer import LedgerConsumer
from services.ledger.adapters.postgres.db import open_pool, pool_connector
from services.ledger.adapters.postgres.invoices import Invoicer
from services.ledger.adapters.postgres.migrate import apply_migrations
from services.ledger.domain.catalogue import load_catalogue
from services.ledger.metrics import LedgerMetrics
from services.ledger.settings import LedgerSettings
from services.serving.server import uvicorn_config

log = logging.getLogger(__name__)


def invoice_periodically(invoicer: Invoicer, interval: float, stop: threading.Event) -> None:
    """Issue due invoices every `interval` seconds; a failed round is logged and retried next time."""
    while not stop.is_set():
        try:
            issued = invoicer.issue_due()
            if issued:
                log.info("issued %d invoices: %s", len(issued), ", ".join(issued))
        except Exception:  # one bad round (database down) must not end invoicing for good
            log.exception("periodic invoicing failed; retrying in %.0fs", interval)
        stop.wait(interval)


def run(environ: Mapping[str, str], clock: Clock | None = None) -> None:
    """Serve until SIGTERM/SIGINT; then the API drains, the consumer finishes its batch, and all closes."""
    settings = LedgerSettings.from_env(environ)
    catalogue = load_catalogue(settings.price_catalogue)  # a bad price list stops the start, naming the tier
    if settings.owner_database_url:
        applied = apply_migrations(settings.owner_database_url, settings.app_role)
        log.info("ledger schema up to date (%d migrations applied now)", len(applied))
    clock = clock or SystemClock()
    metrics = LedgerMetrics()
    metrics_server, _ = start_http_server(
        settings.metrics_port, addr=settings.host, registry=metrics.registry
    )
    pool = open_pool(settings.app_database_url, settings.pool_size)
    pool.open(wait=False)
    connect = pool_connector(pool)
    start = Month.parse(settings.billing_start) if settings.billing_start else None
    invoicer = Invoicer(connect, clock, timedelta(hours=settings.invoice_grace_hours), metrics, start)
    stop = threading.Event()
    workers = [
        threading.Thread(target=LedgerConsumer(settings, metrics).run, args=(stop,), name="ledger-consumer"),
        threading.Thread(
            target=invoice_periodically,
            args=(invoicer, settings.invoice_interval_seconds, stop),
            name="ledger-invoicer",
        ),
    ]
    if settings.consume_alerts:
        alerts = AlertConsumer(settings, metrics)
        workers.append(threading.Thread(target=alerts.run, args=(stop,), name="ledger-alerts"))
    if settings.consume_agreements:
        agreements = AgreementConsumer(settings, metrics)
        workers.append(threading.Thread(target=agreements.run, args=(stop,), name="ledger-agreements"))
    for worker in workers:
        worker.start()
    tokens = FileTokenStore(settings.tokens_file)
    app = create_app(settings, connect, tokens, clock, metrics, invoicer, catalogue)
    config = uvicorn_config(
        app, settings.host, settings.port, settings.http, lifespan="off", timeout_graceful_shutdown=10
    )
    log.info(
        "ledger on http://%s:%d, metrics on :%d, consuming %s, %s and %s",
        settings.host,
        settings.port,
        settings.metrics_port,
        settings.topic,
        settings.alerts_topic if settings.consume_alerts else "no alerts",
        settings.agreements_topic if settings.consume_agreements else "no agreements",
    )
    # Without this the signal uvicorn raises again would kill us before the consumer finishes its batch.
    keep_exit_graceful(stop.set)
    try:
        uvicorn.Server(config).run()
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=60)
        pool.close()
        metrics_server.shutdown()
