"""One `tollgate serve processor` process on the bench's topics, and what the bench reads off it."""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from bench.processor_workload import PARTITIONS
from services.demo.launcher import free_port
from services.demo.observe import metric_sum

log = logging.getLogger("bench.processor")
ROOT = Path(__file__).resolve().parents[1]
HANDLED_METRIC = "tollgate_processor_events_total"


@dataclass
class Worker:
    """A worker process: its group, metrics address and log."""

    process: subprocess.Popen[bytes]
    group: str
    metrics: str
    log_path: Path
    spawned_at: float = field(default_factory=time.monotonic)

    def handled(self, **labels: str) -> float:
        """Input events handled so far (by outcome, if given); 0 until the metrics port answers."""
        try:
            return metric_sum(self.metrics, HANDLED_METRIC, **labels)
        except httpx.HTTPError:
            return 0.0

    def check_alive(self) -> None:
        """Raise with the log's tail if the worker exited."""
        if self.process.poll() is not None:
            tail = self.log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"processor exited with {self.process.returncode}:\n{tail}")

    def rss_mb(self) -> float | None:
        """The worker's resident set size (MB), from /proc."""
        return rss_mb(self.process.pid)

    def cpu_seconds(self) -> float | None:
        """The worker's user + system CPU seconds so far."""
        return cpu_seconds(self.process.pid)

    def stop(self) -> None:
        """SIGTERM, then wait for a graceful exit (kill after 60 s)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def spawn(
    bootstrap: str, names: Mapping[str, str], group: str, data_dir: Path, env: Mapping[str, str] | None = None
) -> Worker:
    """Start a worker of `group` on the bench's topics with its state in `data_dir`."""
    port = free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    environ = {
        **os.environ,
        "TOLLGATE_KAFKA_BOOTSTRAP": bootstrap,
        "TOLLGATE_PROCESSOR_APP_ID": group,
        "TOLLGATE_PROCESSOR_METRICS_PORT": str(port),
        "TOLLGATE_PROCESSOR_DATA_DIR": str(data_dir),
        "TOLLGATE_LOG_LEVEL": "warning",
        **{f"TOLLGATE_PROCESSOR_TOPIC_{k}": v for k, v in names.items() if k in _TOPIC_KINDS},
        **(env or {}),
    }
    log_path = data_dir.parent / f"{data_dir.name}-{uuid.uuid4().hex[:4]}.log"
    command = [sys.executable, "-m", "services.cli", "serve", "processor"]
    profile_dir = os.environ.get("BENCH_PROFILE")
    if profile_dir:
        output = Path(profile_dir) / f"processor-{uuid.uuid4().hex[:6]}.txt"
        command[1:1] = ["-m", "pyinstrument", "-r", "text", "-o", str(output)]
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
            command, cwd=ROOT, env=environ, stdout=log_file, stderr=subprocess.STDOUT
        )
    return Worker(process, group, f"127.0.0.1:{port}", log_path)


_TOPIC_KINDS = ("INPUT", "DLQ", "AGREEMENTS", "ALERTS", "BILLABLE")


class GroupWatch:
    """A consumer group's committed offsets and a topic's end offsets, per partition."""

    def __init__(self, bootstrap: str, group: str, topic: str) -> None:
        self.group = group
        self.partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        self.admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        self.consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)

    def committed(self) -> dict[int, int]:
        """Committed offset per partition (0 where nothing is committed yet)."""
        offsets = self.admin.list_group_offsets({self.group: self.partitions}).get(self.group, {})
        return {tp.partition: max(0, getattr(offsets.get(tp), "offset", -1)) for tp in self.partitions}

    def ends(self) -> dict[int, int]:
        """End offset per partition."""
        return {tp.partition: end for tp, end in self.consumer.end_offsets(self.partitions).items()}

    def lag(self) -> int:
        """Records not yet committed by the group."""
        committed, ends = self.committed(), self.ends()
        return sum(max(0, end - committed[p]) for p, end in ends.items())

    def wait_committed(self, ends: Mapping[int, int], timeout: float, alive: object = None) -> float:
        """Block until the group committed `ends` on every partition; the monotonic time it saw that."""
        deadline = time.monotonic() + timeout
        while True:
            committed = self.committed()
            if all(committed[p] >= end for p, end in ends.items()):
                return time.monotonic()
            if callable(alive):
                alive()
            if time.monotonic() > deadline:
                raise TimeoutError(f"committed {sum(committed.values())} of {sum(ends.values())}")
            time.sleep(0.05)

    def close(self) -> None:
        """Release both clients."""
        self.admin.close()
        self.consumer.close()


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of process `pid` so far (Linux /proc); None where unavailable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def rss_mb(pid: int) -> float | None:
    """Resident set size of `pid` in MB (VmRSS), None where unavailable."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except (OSError, ValueError):
        return None
    return None


def pyspy(pid: int) -> subprocess.Popen[bytes] | None:
    """`py-spy record` (CPU samples; add `--idle` in $BENCH_PYSPY_ARGS for wall time) on `pid` when
    $BENCH_PYSPY names a directory (stop it with SIGINT)."""
    directory = os.environ.get("BENCH_PYSPY")
    if not directory:
        return None
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    output = Path(directory) / f"drain-{uuid.uuid4().hex[:6]}.txt"
    extra = shlex.split(os.environ.get("BENCH_PYSPY_ARGS", ""))
    command = [spy, "record", "--pid", str(pid), "--threads", "--format", "raw", "-o", str(output)]
    log.warning("profiling the drain: %s", shlex.join(command + extra))
    return subprocess.Popen([*command, *extra], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
