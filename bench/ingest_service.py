"""`tollgate serve ingest` as a bench subprocess: start it, wait for its workers, read CPU and counts."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from bench.cpu_budget import read_processes
from services.core.tokens import FileTokenStore
from services.demo.launcher import wait_http_ok
from services.demo.scenario import MONTH_START
from services.ingest.errors import IngestError
from services.stack.ports import free_port

STARTED = "Application startup complete"
WORKER_SAMPLE = re.compile(r'^tollgate_ingest_worker_requests_total\{worker="(\d+)"\} (\S+)$', re.MULTILINE)


@dataclass
class ServedIngest:
    """A running `tollgate serve ingest`: its URL, token, metrics URL and (supervisor) pid."""

    url: str
    token: str
    metrics_url: str
    pid: int

    def cpu_seconds(self) -> float:
        """CPU seconds used so far by the service's processes (the supervisor and its workers)."""
        return tree_cpu_seconds(self.pid)

    def requests_per_worker(self) -> dict[str, float]:
        """`tollgate_ingest_worker_requests_total` by worker, from the service's metrics."""
        text = httpx.get(self.metrics_url, timeout=10).text
        found = WORKER_SAMPLE.findall(text)
        return {worker: float(value) for worker, value in found}


@contextmanager
def ingest_process(bootstrap: str, topic: str, workdir: Path, workers: int = 1) -> Iterator[ServedIngest]:
    """`tollgate serve ingest` with `workers` processes as a subprocess on free ports."""
    tokens = workdir / "tokens.json"
    token = FileTokenStore(tokens).create("bench", "ingest")
    port, metrics_port = free_port(), free_port()
    env = {
        **os.environ,
        "TOLLGATE_KAFKA_BOOTSTRAP": bootstrap,
        "TOLLGATE_TOKENS_FILE": str(tokens),
        "TOLLGATE_INGEST_PORT": str(port),
        "TOLLGATE_INGEST_METRICS_PORT": str(metrics_port),
        "TOLLGATE_INGEST_WORKERS": str(workers),
        "TOLLGATE_INGEST_TOPIC": topic,
        # The demo calls lie in a fixed month (October 2026), which falls out of ingest's 35-day age bound
        # as time goes by: reach back a year before it, as the demo launcher does.
        "TOLLGATE_INGEST_MAX_EVENT_AGE_SECONDS": str(
            int((datetime.now(UTC) - (MONTH_START - timedelta(days=366))).total_seconds())
        ),
    }
    log_path = workdir / f"ingest-{workers}.log"
    with log_path.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "serve", "ingest"], env=env, stdout=out, stderr=out
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http_ok(process, f"{url}/readyz", 60.0, "ingest", log_path)
        served = ServedIngest(url, token, f"http://127.0.0.1:{metrics_port}/metrics", process.pid)
        wait_for_workers(process, log_path, workers)
        yield served
    finally:
        process.terminate()
        process.wait(timeout=30)


def wait_for_workers(process: subprocess.Popen[bytes], log_path: Path, workers: int) -> None:
    """Until each of the `workers` processes has started its app (a line of the service's log each)."""
    deadline = time.monotonic() + 60
    while log_path.read_text(errors="replace").count(STARTED) < workers:
        if process.poll() is not None or time.monotonic() > deadline:
            raise IngestError(f"{workers} ingest workers did not start; see {log_path}")
        time.sleep(0.2)


def tree_cpu_seconds(root: int) -> float:
    """User + system CPU seconds of process `root` and its descendants (Linux /proc)."""
    processes = read_processes()
    tree, grew = {root}, True
    while grew:
        more = {pid for pid, (_, parent, _) in processes.items() if parent in tree} - tree
        tree |= more
        grew = bool(more)
    return sum(processes[pid][2] for pid in tree if pid in processes)
