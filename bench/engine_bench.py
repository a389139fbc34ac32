"""The engine comparison in one run: the same small job (bench/engine_jobs.py) on quix-streams and on
faust-streaming, and the raw consume + produce loop, each draining the same pre-filled topic."""

from __future__ import annotations

import logging
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench.processor_drain import raw_consume_produce
from bench.processor_maths import drain_rate, ratio
from bench.processor_worker import ROOT, GroupWatch, cpu_seconds, rss_mb

log = logging.getLogger("bench.engines")
ENGINES = (("quix", "exactly-once"), ("faust", "at_least_once"))


def _wait_first(path: Path, process: subprocess.Popen[bytes], log_path: Path, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while not path.exists() or not path.read_text():
        if process.poll() is not None:
            raise RuntimeError(f"job exited {process.returncode}: {log_path.read_text()[-2000:]}")
        if time.monotonic() > deadline:
            raise TimeoutError("the job handled nothing")
        time.sleep(0.02)
    # The file holds the wall time; convert to this process's monotonic clock.
    return time.monotonic() - (time.time() - float(path.read_text()))


def run_job(
    bootstrap: str,
    engine: str,
    guarantee: str,
    input_topic: str,
    events: int,
    ends: Mapping[int, int],
    timeout: float = 900,
) -> dict[str, Any]:
    """One engine's job on `input_topic`: events/s from its first record to the group's committed end."""
    group, output = f"bench-{engine}-{uuid.uuid4().hex[:6]}", f"bench-{engine}-out-{uuid.uuid4().hex[:6]}"
    with tempfile.TemporaryDirectory() as workdir:
        first_file, log_path = Path(workdir) / "first", Path(workdir) / "job.log"
        command = [
            sys.executable,
            "-m",
            "bench.engine_jobs",
            engine,
            bootstrap,
            input_topic,
            output,
            group,
            str(Path(workdir) / "state"),
            str(first_file),
            guarantee,
        ]
        with log_path.open("ab") as out:
            process = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)  # noqa: S603
        watch = GroupWatch(bootstrap, group, input_topic)
        try:
            first = _wait_first(first_file, process, log_path, timeout)
            cpu_first = cpu_seconds(process.pid)
            committed = watch.wait_committed(ends, timeout)
            cpu_end, rss = cpu_seconds(process.pid), rss_mb(process.pid)
        finally:
            watch.close()
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
    cpu = cpu_end - cpu_first if cpu_first is not None and cpu_end is not None else None
    return {
        "engine": engine,
        "guarantee": guarantee,
        "events": events,
        "seconds": round(committed - first, 3),
        "events_per_s": drain_rate(events, 0, first, committed),
        "worker_cpu_share": round(cpu / (committed - first), 2) if cpu is not None else None,
        "rss_mb": rss,
    }


def compare(
    bootstrap: str, input_topic: str, out_topic: str, events: int, ends: Mapping[int, int]
) -> dict[str, Any]:
    """Raw loop, then each engine's job, on the same records; each engine's ratio to the raw loop."""
    raw = raw_consume_produce(bootstrap, input_topic, {}, ends, out_topic)
    jobs = {}
    for engine, guarantee in ENGINES:
        try:
            jobs[engine] = run_job(bootstrap, engine, guarantee, input_topic, events, ends)
        except Exception as exc:  # one engine failing must not hide the others' figures
            log.exception("engine %s failed", engine)
            jobs[engine] = {"engine": engine, "guarantee": guarantee, "error": f"{type(exc).__name__}: {exc}"}
        jobs[engine]["ratio_to_raw"] = ratio(jobs[engine].get("events_per_s"), raw["events_per_s"])
    quix_rate = jobs.get("quix", {}).get("events_per_s")
    faust_rate = jobs.get("faust", {}).get("events_per_s")
    return {"events": events, "raw": raw, "jobs": jobs, "faust_to_quix": ratio(faust_rate, quix_rate)}
