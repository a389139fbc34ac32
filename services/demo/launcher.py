"""Run the three services as real processes against a stack: for `make run`, e2e tests and benchmarks."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from services.core.errors import TollgateError
from services.demo.scenario import MONTH_START
from services.stack.state import StackInfo

log = logging.getLogger(__name__)


class LaunchError(TollgateError):
    """A service process did not start or did not become ready."""


@dataclass
class RunningService:
    """One service process and the ports it serves."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    ports: dict[str, int] = field(default_factory=dict)

    @property
    def url(self) -> str:
        """Base URL of the service's HTTP API, if it has one."""
        return f"http://127.0.0.1:{self.ports['http']}" if "http" in self.ports else ""

    @property
    def metrics_address(self) -> str:
        """host:port of the metrics endpoint."""
        return f"127.0.0.1:{self.ports['metrics']}"


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http_ok(
    process: subprocess.Popen[bytes], url: str, timeout: float, name: str, log_path: Path | None = None
) -> None:
    """Wait until GET `url` answers 200; LaunchError when `process` exits first or `timeout` passes."""
    log_hint = f"; log: {log_path}" if log_path else ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise LaunchError(f"{name} exited with {process.returncode}{log_hint}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise LaunchError(f"{name} not ready at {url} after {timeout:.0f}s{log_hint}")


class ServiceLauncher:
    """Starts, kills and stops service processes; every process is stopped by its pid."""

    def __init__(
        self, endpoints: StackInfo, workdir: Path, tokens_file: Path, extra_env: dict[str, str] | None = None
    ) -> None:
        self.endpoints = endpoints
        self.workdir = workdir
        self.tokens_file = tokens_file
        self.extra_env = extra_env or {}
        self.running: dict[str, RunningService] = {}
        workdir.mkdir(parents=True, exist_ok=True)

    def _env(self, specific: dict[str, str]) -> dict[str, str]:
        env = dict(os.environ)
        # The scenario is a fixed month (October 2026) that falls out of ingest's 35-day default as time goes
        # by: these services take event times back to a year before it, unless told otherwise.
        reach = datetime.now(UTC) - (MONTH_START - timedelta(days=366))
        env.setdefault("TOLLGATE_INGEST_MAX_EVENT_AGE_SECONDS", str(int(reach.total_seconds())))
        # The story reads the ledger moments after the calls: usage buckets flush every 2 s here, not 300.
        env.setdefault("TOLLGATE_PROCESSOR_USAGE_FLUSH_SECONDS", "2")
        env.update({
            "TOLLGATE_KAFKA_BOOTSTRAP": self.endpoints.kafka_bootstrap,
            "TOLLGATE_DATABASE_URL": self.endpoints.database_url,
            "TOLLGATE_APP_DATABASE_URL": self.endpoints.app_database_url,
            "TOLLGATE_TOKENS_FILE": str(self.tokens_file),
        })
        env.update(self.extra_env)
        env.update(specific)
        return env

    def _spawn(self, key: str, service: str, ports: dict[str, int], env: dict[str, str]) -> RunningService:
        log_path = self.workdir / f"{key}.log"
        handle = log_path.open("ab")
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "services.cli", "serve", service],
            stdout=handle, stderr=subprocess.STDOUT, env=self._env(env), start_new_session=True,
        )
        handle.close()
        running = RunningService(key, process, log_path, ports)
        self.running[key] = running
        return running

    def start_ingest(self, key: str = "ingest", timeout: float = 60.0) -> RunningService:
        """Start the ingest service and wait until /readyz says it can reach Kafka."""
        return self._start_http("ingest", key, timeout)

    def start_ledger(self, key: str = "ledger", timeout: float = 60.0) -> RunningService:
        """Start the ledger service and wait until /readyz says it can reach PostgreSQL."""
        return self._start_http("ledger", key, timeout)

    def _start_http(self, service: str, key: str, timeout: float) -> RunningService:
        ports = {"http": free_port(), "metrics": free_port()}
        prefix = f"TOLLGATE_{service.upper()}"
        env = {f"{prefix}_PORT": str(ports["http"]), f"{prefix}_METRICS_PORT": str(ports["metrics"])}
        running = self._spawn(key, service, ports, env)
        wait_http_ok(running.process, f"{running.url}/readyz", timeout, running.name, running.log_path)
        return running

    def start_processor(self, key: str = "processor", app_id: str = "tollgate-processor",
                        timeout: float = 90.0) -> RunningService:
        """Start a processor worker and wait until its metrics endpoint answers."""
        ports = {"metrics": free_port()}
        env = {
            "TOLLGATE_PROCESSOR_METRICS_PORT": str(ports["metrics"]),
            "TOLLGATE_PROCESSOR_APP_ID": app_id,
            "TOLLGATE_PROCESSOR_DATA_DIR": str(self.workdir / f"{key}-data"),
        }
        service = self._spawn(key, "processor", ports, env)
        metrics_url = f"http://{service.metrics_address}/metrics"
        wait_http_ok(service.process, metrics_url, timeout, service.name, service.log_path)
        return service

    def kill(self, key: str) -> None:
        """kill -9 a service: no shutdown hooks run."""
        service = self.running.pop(key)
        service.process.send_signal(signal.SIGKILL)
        service.process.wait(timeout=30)

    def stop(self, key: str, timeout: float = 30.0) -> None:
        """Stop a service with SIGTERM, then SIGKILL if it lingers."""
        service = self.running.pop(key, None)
        if service is None or service.process.poll() is not None:
            return
        service.process.send_signal(signal.SIGTERM)
        try:
            service.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log.warning("%s ignored SIGTERM for %.0fs; killing it", key, timeout)
            service.process.kill()
            service.process.wait(timeout=10)

    def stop_all(self) -> None:
        """Stop every service this launcher started."""
        for key in list(self.running):
            self.stop(key)
