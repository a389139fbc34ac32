"""One ingest worker process: `python -m services.ingest.worker INDEX [LOG_LEVEL]`, started by the supervisor.

It reads and validates the same `TOLLGATE_*` settings, binds the port with SO_REUSEPORT beside its
siblings, builds its own app and kafka-python producer in `bootstrap`, and records its metrics in the
supervisor's `PROMETHEUS_MULTIPROC_DIR`. It stops by itself when the supervisor is gone.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time

import uvicorn

from services.ingest.main import bootstrap, quiet_kafka_logs, serve
from services.ingest.metrics import IngestMetrics
from services.ingest.settings import IngestSettings
from services.ingest.workers import reuseport_socket

log = logging.getLogger(__name__)


def stop_when_orphaned(server: uvicorn.Server, parent: int) -> None:
    """Drain and stop `server` once the supervisor `parent` has died (say, killed with SIGKILL)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        log.warning("ingest supervisor %d is gone; stopping", parent)
        server.should_exit = True

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def main(argv: list[str]) -> int:
    """Serve as worker `argv[0]` until SIGTERM; 0 after a graceful stop."""
    index = int(argv[0])
    level = argv[1] if len(argv) > 1 else "INFO"
    logging.basicConfig(
        level=level, format=f"%(asctime)s %(levelname)s %(name)s[worker {index}]: %(message)s"
    )
    if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        log.error("an ingest worker runs under `tollgate serve ingest` with TOLLGATE_INGEST_WORKERS > 1")
        return 2
    settings = IngestSettings.from_env(os.environ)
    quiet_kafka_logs()
    sock = reuseport_socket(settings.host, settings.port)
    server = bootstrap(settings, IngestMetrics(worker=index))
    stop_when_orphaned(server, os.getppid())
    serve(server, [sock])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
