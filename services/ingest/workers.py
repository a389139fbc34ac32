"""`TOLLGATE_INGEST_WORKERS` > 1: a supervisor process and N ingest processes sharing one port.

Each worker (`python -m services.ingest.worker INDEX`) binds the port with SO_REUSEPORT, so the kernel
spreads new connections over them, and builds its own app and kafka-python producer. The supervisor holds
no Kafka client and no app: it starts the workers, restarts one that dies, forwards SIGTERM/SIGINT (each
worker drains its requests and flushes its producer) and serves every worker's metrics, summed by
prometheus-client's multiprocess mode, on `TOLLGATE_INGEST_METRICS_PORT`.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import CollectorRegistry, multiprocess, start_http_server

from services.core.shutdown import STOP_SIGNALS
from services.ingest.errors import IngestError
from services.ingest.settings import IngestSettings

log = logging.getLogger(__name__)

# A worker exiting this soon after its start failed to start; this many such exits in a row end the service.
QUICK_EXIT_SECONDS = 10.0
MAX_QUICK_EXITS = 5
RESTART_DELAY_SECONDS = 1.0


def reuseport_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to `host:port` with SO_REUSEPORT, not yet listening (uvicorn listens on it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on connections whose socket says TCP, and without
    # it Nagle and the client's delayed ACK held each answer about 40 ms (a 100-event post took 52 ms).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


@dataclass
class Worker:
    """One worker process and when it was started."""

    index: int
    process: subprocess.Popen[bytes]
    started: float


class Supervisor:
    """Starts, watches and stops the worker processes of one ingest service."""

    def __init__(self, settings: IngestSettings, environ: Mapping[str, str], metrics_dir: Path) -> None:
        self.settings = settings
        self.environ = {**environ, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
        self.workers: dict[int, Worker] = {}
        self.restart_at: dict[int, float] = {}
        self.quick_exits = 0
        self.stopping = threading.Event()

    def spawn(self, index: int) -> None:
        """Start worker `index` (again)."""
        level = logging.getLevelName(logging.getLogger().getEffectiveLevel())
        command = [sys.executable, "-m", "services.ingest.worker", str(index), level]
        # A session of its own: a terminal's Ctrl-C reaches the supervisor only, which forwards one SIGTERM
        # (a second signal would make uvicorn abandon the requests it is draining).
        process = subprocess.Popen(command, env=self.environ, start_new_session=True)  # noqa: S603
        self.workers[index] = Worker(index, process, time.monotonic())
        log.info("ingest worker %d started, pid %d", index, process.pid)

    def watch(self) -> None:
        """Restart workers that exit, until a stop signal; give up when they keep failing at start-up."""
        while not self.stopping.wait(0.2):
            now = time.monotonic()
            for worker in list(self.workers.values()):
                code = worker.process.poll()
                if code is not None:
                    self._exited(worker, code, now)
            for index, when in list(self.restart_at.items()):
                if now >= when and not self.stopping.is_set():
                    del self.restart_at[index]
                    self.spawn(index)

    def _exited(self, worker: Worker, code: int, now: float) -> None:
        del self.workers[worker.index]
        quick = now - worker.started < QUICK_EXIT_SECONDS
        self.quick_exits = self.quick_exits + 1 if quick else 0
        log.warning("ingest worker %d (pid %d) exited with %d", worker.index, worker.process.pid, code)
        if self.quick_exits >= MAX_QUICK_EXITS:
            raise IngestError(f"ingest workers exited {self.quick_exits} times in a row right after starting")
        self.restart_at[worker.index] = now + RESTART_DELAY_SECONDS

    def stop(self) -> list[int]:
        """SIGTERM every worker once, wait while they drain (SIGKILL past the grace), return exit codes."""
        for worker in self.workers.values():
            if worker.process.poll() is None:
                worker.process.send_signal(signal.SIGTERM)
        grace = self.settings.produce_timeout_seconds + self.settings.http.body_timeout_seconds + 10
        deadline = time.monotonic() + grace
        codes = []
        for worker in self.workers.values():
            try:
                codes.append(worker.process.wait(timeout=max(0.1, deadline - time.monotonic())))
            except subprocess.TimeoutExpired:
                log.warning("ingest worker %d did not stop within %.0fs; killing it", worker.index, grace)
                worker.process.kill()
                codes.append(worker.process.wait())
        return codes


@contextmanager
def summed_metrics(settings: IngestSettings) -> Iterator[Path]:
    """Serve the sum of the workers' metrics on the metrics port; yields the directory they write them to."""
    metrics_dir = Path(tempfile.mkdtemp(prefix="tollgate-ingest-metrics-"))
    try:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=str(metrics_dir))
        metrics_server, _ = start_http_server(settings.metrics_port, addr=settings.host, registry=registry)
        try:
            yield metrics_dir
        finally:
            metrics_server.shutdown()
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def supervise(settings: IngestSettings, environ: Mapping[str, str]) -> None:
    """Run `settings.workers` ingest processes on the port until SIGTERM/SIGINT; raise if one exits badly."""
    # Fail here, with one clear error, when something other than our workers holds the port.
    reuseport_socket(settings.host, settings.port).close()
    with summed_metrics(settings) as metrics_dir:
        supervisor = Supervisor(settings, environ, metrics_dir)
        for sig in STOP_SIGNALS:
            signal.signal(sig, lambda *_: supervisor.stopping.set())
        log.info(
            "ingest supervisor, pid %d: %d workers on port %d, their metrics on http://%s:%d/metrics",
            os.getpid(),
            settings.workers,
            settings.port,
            settings.host,
            settings.metrics_port,
        )
        try:
            for index in range(settings.workers):
                supervisor.spawn(index)
            supervisor.watch()
        finally:
            codes = supervisor.stop()
    # -SIGTERM: a worker stopped before it took the signal over, so before it served anything.
    if any(code not in (0, -signal.SIGTERM) for code in codes):
        raise IngestError(f"ingest workers exited with {codes}")
