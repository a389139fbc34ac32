"""`LocalStack`: start, reuse, inspect and stop the four processes of one stack directory."""

from __future__ import annotations

import logging
import shutil
import signal
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from services.stack import kafka, postgres, prometheus
from services.stack.config import StackConfig
from services.stack.errors import PartFailed, StackError
from services.stack.ports import free_ports
from services.stack.process import ensure_port_free, is_ours, stop_pid
from services.stack.state import StackInfo, load_state, save_state

log = logging.getLogger(__name__)

Starter = Callable[[StackConfig, Mapping[str, int], Callable[[int], None]], dict[str, Any]]
STARTERS: dict[str, Starter] = {
    "kafka": kafka.start,
    "postgres": postgres.start,
    "prometheus": prometheus.start_prometheus,
    "alertmanager": prometheus.start_alertmanager,
}
# Parts that can be stopped and started again in place (same ports, same data) while the rest runs.
RESTARTERS: dict[str, Starter] = {"kafka": kafka.restart, "postgres": postgres.restart}
PORT_NAMES = {
    "kafka": ("kafka", "kafka_controller"),
    "postgres": ("postgres",),
    "prometheus": ("prometheus",),
    "alertmanager": ("alertmanager",),
}
STOP_ORDER = ("prometheus", "alertmanager", "kafka", "postgres")


class LocalStack:
    """The local stack of one directory; its state file records ports, pids, urls and dirs."""

    def __init__(self, config: StackConfig | None = None) -> None:
        self.config = config or StackConfig.from_env()

    @property
    def marker(self) -> str:
        """Text every process of this stack has on its command line (guards against pid reuse)."""
        return f"{self.config.stack_dir}/"

    def state(self) -> dict[str, Any] | None:
        """Return the recorded state, if any."""
        return load_state(self.config.state_path)

    def alive(self, state: Mapping[str, Any] | None = None) -> dict[str, bool]:
        """Return, for each recorded part, whether its process still runs."""
        state = state if state is not None else self.state() or {}
        return {part: is_ours(info.get("pid"), self.marker) for part, info in state.get("parts", {}).items()}

    def is_running(self) -> bool:
        """Return whether every configured part is recorded, ready and alive."""
        state = self.state()
        if not state or not state.get("ready"):
            return False
        alive = self.alive(state)
        return all(alive.get(part, False) for part in self.config.parts)

    def info(self) -> StackInfo | None:
        """Return the connection facts of the recorded stack, if any."""
        state = self.state()
        return StackInfo.from_state(state) if state else None

    def up(self) -> StackInfo:
        """Start the stack, or reuse it when the recorded one is alive; return how to reach it."""
        if self.is_running():
            log.info("reusing the running stack in %s", self.config.stack_dir)
            info = self.info()
            if info is not None:
                return info
        if self.state():
            self.down()
        started = time.monotonic()
        ports = self._allocate_ports()
        state: dict[str, Any] = {
            "stack_dir": str(self.config.stack_dir),
            "started_at": datetime.now(UTC).isoformat(),
            "ports": ports,
            "parts": {},
            "ready": False,
        }
        self._wipe()
        save_state(self.config.state_path, state)
        self._start_parts(state, ports)
        state["ready"] = True
        state["up_seconds"] = round(time.monotonic() - started, 1)
        save_state(self.config.state_path, state)
        log.info("stack up in %s after %.1fs", self.config.stack_dir, state["up_seconds"])
        return StackInfo.from_state(state)

    def _allocate_ports(self) -> dict[str, int]:
        names = [name for part in self.config.parts for name in PORT_NAMES[part]]
        chosen = dict(zip(names, free_ports(len(names)), strict=True))
        chosen.update({name: port for name, port in self.config.ports.items() if name in chosen})
        for name, port in chosen.items():
            part = "kafka" if name.startswith("kafka") else name
            ensure_port_free(part, port, self.config.log_path(part))
        return chosen

    def _wipe(self) -> None:
        for part in self.config.parts:
            shutil.rmtree(self.config.part_dir(part), ignore_errors=True)
            self.config.log_path(part).unlink(missing_ok=True)

    def _start_parts(self, state: dict[str, Any], ports: Mapping[str, int]) -> None:
        lock = threading.Lock()

        def record(part: str, info: dict[str, Any]) -> None:
            with lock:
                state["parts"][part] = info
                save_state(self.config.state_path, state)

        def run(part: str) -> None:
            try:
                info = STARTERS[part](self.config, ports, lambda pid: record(part, {"pid": pid}))
            except StackError:
                raise
            except Exception as exc:
                raise PartFailed(part, f"{type(exc).__name__}: {exc}", self.config.log_path(part)) from exc
            record(part, info)

        with ThreadPoolExecutor(max_workers=len(self.config.parts), thread_name_prefix="stack") as pool:
            futures = {part: pool.submit(run, part) for part in self.config.parts}
            errors = [exc for future in futures.values() if (exc := future.exception()) is not None]
        if errors:
            log.error("stack failed to start: %s", "; ".join(str(exc) for exc in errors))
            self.down()
            raise errors[0]

    def down(self) -> list[str]:
        """Stop every recorded process by pid, verify none is left, forget the state; return parts stopped."""
        state = self.state()
        if not state:
            return []
        parts = state.get("parts", {})
        stopped: list[str] = []
        left: list[str] = []
        for part in sorted(parts, key=lambda name: STOP_ORDER.index(name) if name in STOP_ORDER else 0):
            pid = parts[part].get("pid")
            if not is_ours(pid, self.marker):
                continue
            gone = postgres.stop(pid) if part == postgres.PART else stop_pid(pid)
            (stopped if gone else left).append(part)
        still = [part for part, alive in self.alive(state).items() if alive]
        if left or still:
            names = sorted({*left, *still})
            raise StackError(f"stack in {self.config.stack_dir}: still running after stop: {names}")
        self.config.state_path.unlink(missing_ok=True)
        log.info("stack in %s down (stopped %s)", self.config.stack_dir, ", ".join(stopped) or "nothing")
        return stopped

    def _running_state(self, part: str) -> dict[str, Any]:
        state = self.state()
        if not state or not state.get("ready"):
            raise StackError(f"no running stack in {self.config.stack_dir}")
        if part not in RESTARTERS:
            raise StackError(f"{part!r} cannot be stopped alone; one of {sorted(RESTARTERS)} can")
        if part not in state.get("parts", {}):
            raise StackError(f"the stack in {self.config.stack_dir} has no {part}")
        return state

    def stop_part(self, part: str, *, kill: bool = False) -> None:
        """Stop one part by pid (cleanly, or SIGKILL when `kill`), keeping its ports, data and record."""
        state = self._running_state(part)
        pid = state["parts"][part].get("pid")
        if not is_ours(pid, self.marker):
            return
        if kill:  # PostgreSQL's crash-like stop is immediate shutdown: a SIGKILLed postmaster leaks children
            gone = stop_pid(pid, (signal.SIGQUIT,) if part == postgres.PART else (), grace=10.0)
        else:
            gone = postgres.stop(pid) if part == postgres.PART else stop_pid(pid)
        if not gone:
            raise PartFailed(part, f"pid {pid} still running after stop", self.config.log_path(part))
        log.info("%s of the stack in %s stopped (pid %s)", part, self.config.stack_dir, pid)

    def start_part(self, part: str) -> dict[str, Any]:
        """Start a stopped part again in place (same ports and data dir, nothing wiped); wait until ready."""
        state = self._running_state(part)
        info = state["parts"][part]
        if is_ours(info.get("pid"), self.marker):
            raise StackError(f"{part} of the stack in {self.config.stack_dir} is already running")

        def record(pid: int) -> None:
            info["pid"] = pid
            save_state(self.config.state_path, state)

        started = time.monotonic()
        try:
            fresh = RESTARTERS[part](self.config, state["ports"], record)
        except StackError:
            raise
        except Exception as exc:
            raise PartFailed(part, f"{type(exc).__name__}: {exc}", self.config.log_path(part)) from exc
        info.update(fresh)
        save_state(self.config.state_path, state)
        log.info("%s restarted in place after %.1fs", part, time.monotonic() - started)
        return dict(info)

    def status(self) -> dict[str, Any]:
        """Return each recorded part's pid, liveness, address and log."""
        state = self.state()
        if not state:
            return {"stack_dir": str(self.config.stack_dir), "running": False, "parts": {}}
        alive = self.alive(state)
        parts = {
            part: {
                "pid": info.get("pid"),
                "alive": alive.get(part, False),
                "address": info.get("url") or info.get("bootstrap") or info.get("port", ""),
                "log": info.get("log", ""),
            }
            for part, info in state.get("parts", {}).items()
        }
        running = bool(state.get("ready")) and all(alive.get(part, False) for part in self.config.parts)
        return {
            "stack_dir": state.get("stack_dir"),
            "running": running,
            "up_seconds": state.get("up_seconds"),
            "parts": parts,
        }

    def register_scrape_target(self, job: str, address: str, labels: Mapping[str, str] | None = None) -> Path:
        """Make this stack's Prometheus scrape `address` (host:port) under `job`."""
        return prometheus.register_scrape_target(
            self.config.part_dir("prometheus") / "targets", job, address, labels
        )
