"""`tollgate serve ingest`: the ingest service as a process."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import uvicorn
from prometheus_client import start_http_server
from starlette.types import ASGIApp

from services.core.shutdown import keep_exit_graceful
from services.core.tokens import FileTokenStore
from services.ingest.app import create_app
from services.ingest.errors import IngestError
from services.ingest.kafka_publisher import KafkaPublisher
from services.ingest.metrics import IngestMetrics
from services.ingest.settings import IngestSettings
from services.ingest.workers import supervise
from services.serving.limits import HttpLimits
from services.serving.server import uvicorn_config

log = logging.getLogger(__name__)


def run(environ: Mapping[str, str]) -> None:
    """Serve until SIGTERM/SIGINT; in-flight requests finish, then the producer is flushed and closed.

    With `TOLLGATE_INGEST_WORKERS` > 1 this process only supervises: it starts that many worker
    processes on the port and serves their summed metrics (`services.ingest.workers`)."""
    settings = IngestSettings.from_env(environ)
    quiet_kafka_logs()
    if settings.workers > 1:
        supervise(settings, environ)
        return
    metrics = IngestMetrics()
    metrics_server, _ = start_http_server(
        settings.metrics_port, addr=settings.host, registry=metrics.registry
    )
    log.info("ingest metrics on http://%s:%d/metrics", settings.host, settings.metrics_port)
    try:
        serve(bootstrap(settings, metrics))
    finally:
        metrics_server.shutdown()


def quiet_kafka_logs() -> None:
    """kafka-python logs every connection at INFO; its warnings are what an operator needs."""
    logging.getLogger("kafka").setLevel(max(logging.WARNING, logging.getLogger().level))


def bootstrap(settings: IngestSettings, metrics: IngestMetrics) -> uvicorn.Server:
    """This process's Kafka producer, app and server: no Kafka client exists before this is called."""
    publisher = KafkaPublisher(settings)
    # Connect in the background: the service starts (and /readyz says 503) even while Kafka is down.
    threading.Thread(target=publisher.warm_up, name="kafka-warm-up", daemon=True).start()
    app = create_app(settings, publisher, FileTokenStore(settings.tokens_file), metrics=metrics)
    config = uvicorn_config(
        app,
        settings.host,
        settings.port,
        settings.http,
        lifespan="on",
        timeout_graceful_shutdown=int(settings.produce_timeout_seconds) + 5,
    )
    log.info("ingest on http://%s:%d, topic %s", settings.host, settings.port, settings.topic)
    return uvicorn.Server(config)


def serve(server: uvicorn.Server, sockets: list[socket.socket] | None = None) -> None:
    """Run `server` (on `sockets` when given) until a stop signal has drained it."""

    def stop() -> None:
        server.should_exit = True

    # Without this the signal uvicorn raises again after draining would end the process with -15; one that
    # comes before uvicorn took the signals over stops the server as soon as it has started.
    keep_exit_graceful(stop)
    server.run(sockets=sockets)


@contextmanager
def serve_in_thread(
    app: ASGIApp, port: int, host: str = "127.0.0.1", limits: HttpLimits | None = None
) -> Iterator[str]:
    """Serve `app` with uvicorn in a background thread (tests, benchmarks); yields the base URL."""
    config = uvicorn_config(app, host, port, limits or HttpLimits(), lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise IngestError(f"uvicorn did not start on {host}:{port}")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
