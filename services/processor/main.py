"""`tollgate serve processor`: one processor worker with its metrics endpoint; stops on SIGTERM/SIGINT."""

from __future__ import annotations

import logging
from collections.abc import Mapping

import faust

from services.processor.app import bootstrap
from services.processor.health import Health, serve
from services.processor.metrics import ProcessorMetrics
from services.processor.settings import ProcessorSettings

log = logging.getLogger(__name__)


def run(environ: Mapping[str, str]) -> None:
    """Run a worker until it is told to stop (mode's Worker turns SIGTERM into a graceful shutdown)."""
    settings = ProcessorSettings.from_env(environ)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    metrics = ProcessorMetrics(settings.metrics_max_licensees)
    health = Health()
    serve(settings.metrics_port, metrics.registry, health)
    log.info(
        "processor %s: /metrics, /healthz, /readyz on 127.0.0.1:%d, kafka %s",
        settings.app_id,
        settings.metrics_port,
        settings.kafka_bootstrap,
    )
    app = bootstrap(settings, metrics, health=health)
    worker = faust.Worker(app, loglevel=settings.loglevel, override_logging=False)
    worker.execute_from_commandline()
