"""Child processes of the stack: spawn with a log file, wait until ready, stop by pid."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import httpx

from services.stack.errors import PartFailed
from services.stack.ports import port_is_open

log = logging.getLogger(__name__)

POLL_SECONDS = 0.2
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}  # kept so they are reaped, not warned about


def spawn(part: str, argv: Sequence[str], log_path: Path, env: Mapping[str, str] | None = None) -> int:
    """Start `argv` detached (own session), stdout and stderr appended to `log_path`; return its pid."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with log_path.open("ab") as out:
            child = subprocess.Popen(  # noqa: S603 - argv is built by the stack, never from user input
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=dict(env) if env is not None else None,
                start_new_session=True,
            )
    except OSError as exc:
        raise PartFailed(part, f"cannot run {argv[0]}: {exc}", log_path) from exc
    _CHILDREN[child.pid] = child
    log.debug("%s started as pid %d: %s", part, child.pid, " ".join(argv))
    return child.pid


def _proc_state(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def _reap(pid: int) -> None:
    child = _CHILDREN.pop(pid, None)
    if child is not None:
        child.poll()
        return
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def is_alive(pid: int | None) -> bool:
    """Return whether `pid` runs (a zombie does not count; our own zombies are reaped)."""
    if not pid:
        return False
    state = _proc_state(pid)
    if state == "Z":
        _reap(pid)
        return False
    if state is not None:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def command_line(pid: int) -> str:
    """Return the command line of `pid`, or an empty string."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def is_ours(pid: int | None, marker: str) -> bool:
    """Return whether `pid` is alive and its command line mentions `marker` (guards against pid reuse)."""
    return bool(pid) and is_alive(pid) and marker in command_line(pid or 0)


def tail(path: Path | None, lines: int = 15) -> str:
    """Return the last `lines` lines of a log file, or an empty string."""
    if path is None:
        return ""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def wait_until(
    part: str,
    ready: Callable[[], bool],
    *,
    timeout: float,
    log_path: Path | None,
    pid: int | None = None,
    what: str = "ready",
) -> float:
    """Poll `ready` until true; fail naming the part if `pid` dies or `timeout` passes. Return seconds."""
    started = time.monotonic()
    while True:
        if ready():
            return time.monotonic() - started
        if pid is not None and not is_alive(pid):
            reason = f"exited before it was {what}; last log lines:\n{tail(log_path)}"
            raise PartFailed(part, reason, log_path)
        if time.monotonic() - started > timeout:
            reason = f"not {what} after {timeout:.0f}s; last log lines:\n{tail(log_path)}"
            raise PartFailed(part, reason, log_path)
        time.sleep(POLL_SECONDS)


def log_has(log_path: Path, text: str, since: int = 0) -> Callable[[], bool]:
    """Return a check that `text` appears in `log_path` (past byte offset `since`, e.g. a restart's)."""
    needle = text.encode()

    def check() -> bool:
        try:
            return needle in log_path.read_bytes()[since:]
        except OSError:
            return False

    return check


def http_ok(url: str) -> Callable[[], bool]:
    """Return a check that GET `url` answers 200."""

    def check() -> bool:
        try:
            return httpx.get(url, timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    return check


def tcp_open(port: int, host: str = "127.0.0.1") -> Callable[[], bool]:
    """Return a check that `host:port` accepts connections."""
    return lambda: port_is_open(port, host)


def ensure_port_free(part: str, port: int, log_path: Path | None = None) -> None:
    """Fail naming the part when something already listens on its port."""
    if port_is_open(port):
        raise PartFailed(part, f"port 127.0.0.1:{port} is already in use", log_path)


def stop_pid(pid: int | None, signals: Sequence[int] = (signal.SIGTERM,), grace: float = 30.0) -> bool:
    """Send each signal in turn (`grace` seconds in all), then SIGKILL; return whether it is gone."""
    if pid is None or not is_alive(pid):
        return True
    step = grace / max(len(signals), 1)
    for sig in (*signals, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return True
        deadline = time.monotonic() + (step if sig != signal.SIGKILL else 10.0)
        while time.monotonic() < deadline:
            if not is_alive(pid):
                return True
            time.sleep(POLL_SECONDS / 2)
        log.warning("pid %d still alive after signal %s", pid, signal.Signals(sig).name)
    return not is_alive(pid)
