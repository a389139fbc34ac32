"""CPU seconds by stage over a run: what each part of the system costs per event on the shared cores.

A process belongs to the stage of its nearest ancestor-or-self whose command line names one (an ingest
worker forked by `tollgate serve ingest` is ingest; a PostgreSQL backend is its postmaster's). Kafka,
PostgreSQL and Prometheus count only when they are the run's stack's own (their command lines name the
stack directory), so another stack on the same machine is not charged to this run. The bench's own
process (the HTTP senders and the sampling) is counted apart, from `os.times()`. A process that exits
mid-run keeps the last CPU figure it was seen with, so sampling every few seconds can miss at most that
much of a short-lived one.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Process = tuple[str, int, float]  # command line, parent pid, user+system CPU seconds so far
# stage, what its command line contains; a service's own names come before the stack's parts.
SERVICES = (("processor", "serve processor"), ("ingest", "serve ingest"), ("ledger", "serve ledger"))
STACK_PARTS = (("kafka", "kafka.Kafka"), ("postgres", "/postgres"), ("prometheus", "prometheus"))


def stage_of(pid: int, processes: Mapping[int, Process], stack_dir: str) -> str | None:
    """The stage `pid` is charged to, or None when it is no part of this run."""
    for _ in range(64):  # a parent chain longer than this is not one of ours
        found = processes.get(pid)
        if found is None:
            return None
        command, parent, _ = found
        for stage, marker in SERVICES:
            if marker in command:
                return stage
        if stack_dir in command:
            for stage, marker in STACK_PARTS:
                if marker in command:
                    return stage
        pid = parent
    return None


def read_processes(proc: Path = Path("/proc")) -> dict[int, Process]:
    """Every process's command line, parent and CPU seconds (Linux /proc); vanished ones left out."""
    tick = os.sysconf("SC_CLK_TCK")
    found: dict[int, Process] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[int(entry.name)] = (command, int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
    return found


@dataclass
class CpuMeter:
    """Samples the stages' CPU every `every` seconds between `start()` and `stop()`."""

    stack_dir: str
    every: float = 2.0
    _first: dict[int, float] = field(default_factory=dict)
    _last: dict[int, tuple[str, float]] = field(default_factory=dict)
    _own: float = 0.0
    _wall: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        """Take the baseline and start sampling."""
        self._first = {pid: cpu for pid, (_, _, cpu) in read_processes().items()}
        self._own, self._wall = _own_cpu(), time.monotonic()
        self._thread = threading.Thread(target=self._sample_until_stopped, daemon=True)
        self._thread.start()

    def stop(self, events: int) -> dict[str, Any]:
        """Stop, take a last sample, and report CPU seconds and microseconds per event by stage."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()
        spent: dict[str, float] = {}
        for pid, (stage, cpu) in self._last.items():
            spent[stage] = spent.get(stage, 0.0) + cpu - self._first.get(pid, 0.0)
        spent["bench (senders, sampling)"] = _own_cpu() - self._own
        return budget(spent, events, time.monotonic() - self._wall)

    def _sample_until_stopped(self) -> None:
        while not self._stop.wait(self.every):
            self._sample()

    def _sample(self) -> None:
        processes = read_processes()
        for pid, (_, _, cpu) in processes.items():
            stage = stage_of(pid, processes, self.stack_dir)
            if stage is not None:
                self._last[pid] = (stage, cpu)


def budget(spent: Mapping[str, float], events: int, wall_s: float) -> dict[str, Any]:
    """CPU seconds and us/event by stage, their sum without the bench, and the rate 2 cores allow."""
    services = sum(v for k, v in spent.items() if not k.startswith("bench"))
    per_event = services / events if events else None
    return {
        "events": events,
        "wall_s": round(wall_s, 1),
        "cpu_s": {k: round(v, 1) for k, v in sorted(spent.items())},
        "us_per_event": {k: round(1e6 * v / events, 1) for k, v in sorted(spent.items())} if events else {},
        "services_us_per_event": round(1e6 * per_event, 1) if per_event else None,
        "two_cores_allow_events_per_s": round(2 / per_event) if per_event else None,
    }


def _own_cpu() -> float:
    times = os.times()
    return times.user + times.system
