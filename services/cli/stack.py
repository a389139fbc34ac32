"""`tollgate stack install|up|down|status|env`: Kafka, PostgreSQL, Prometheus and Alertmanager locally."""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from services.stack import LocalStack, StackConfig, StackError
from services.stack.config import PG_ROOT, REPO_ROOT
from services.stack.kafka import install_jars

log = logging.getLogger(__name__)

SYSTEM_BINARIES = ("prometheus", "promtool", "amtool", "java", "mvn")


def _missing_system_binaries() -> list[str]:
    missing = [name for name in SYSTEM_BINARIES if shutil.which(name) is None]
    if not any(shutil.which(name) for name in ("prometheus-alertmanager", "alertmanager")):
        missing.append("prometheus-alertmanager")
    if not list(PG_ROOT.glob("*/bin/initdb")):
        missing.append("postgresql")
    return missing


def _stack(args: argparse.Namespace) -> LocalStack:
    config = StackConfig.from_env(stack_dir=Path(args.dir).resolve() if args.dir else None)
    return LocalStack(config)


def _install(args: argparse.Namespace) -> int:
    missing = _missing_system_binaries()
    if missing:
        log.info("missing %s: running scripts/install-system.sh", ", ".join(missing))
        script = REPO_ROOT / "scripts" / "install-system.sh"
        subprocess.run(["bash", str(script)], check=True)  # noqa: S603, S607 - our own script
    config = _stack(args).config
    started = time.monotonic()
    ran = install_jars(config.libs_dir, config.kafka_pom)
    seconds = time.monotonic() - started
    print(f"kafka jars {'installed' if ran else 'present'} in {config.libs_dir} ({seconds:.1f}s)")
    return 0


def _up(args: argparse.Namespace) -> int:
    stack = _stack(args)
    info = stack.up()
    state = stack.state() or {}
    print(f"stack up in {stack.config.stack_dir} ({state.get('up_seconds', 0)}s); use it with:")
    print('  eval "$(tollgate stack env)"')
    print(info.shell_exports())
    return 0


def _down(args: argparse.Namespace) -> int:
    stopped = _stack(args).down()
    print(f"stopped: {', '.join(stopped) or 'nothing was running'}")
    return 0


def _status(args: argparse.Namespace) -> int:
    status: dict[str, Any] = _stack(args).status()
    if args.json:
        print(json.dumps(status, indent=2))
        return 0 if status["running"] else 3
    print(f"stack {status['stack_dir']}: {'running' if status['running'] else 'not running'}")
    for part, info in status["parts"].items():
        state = "up" if info["alive"] else "DOWN"
        print(f"  {part:<13} {state:<5} pid {info['pid']!s:<8} {info['address']!s:<28} {info['log']}")
    return 0 if status["running"] else 3


def _env(args: argparse.Namespace) -> int:
    info = _stack(args).info()
    if info is None:
        print("no stack running: `tollgate stack up` first", file=sys.stderr)
        return 3
    print(info.shell_exports())
    return 0


ACTIONS = {"install": _install, "up": _up, "down": _down, "status": _status, "env": _env}


def _run(args: argparse.Namespace) -> int:
    for noisy in ("kafka", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return ACTIONS[args.action](args)
    except StackError as exc:
        print(f"tollgate stack {args.action}: {exc}", file=sys.stderr)
        return 1


def register(subparsers: Any) -> None:
    """Add the `stack` sub-command."""
    parser = subparsers.add_parser("stack", help="the local stack: install, up, down, status, env")
    parser.add_argument("action", choices=sorted(ACTIONS), help="what to do")
    parser.add_argument("--dir", help="stack directory (default $TOLLGATE_STACK_DIR or .stack/ in the repo)")
    parser.add_argument("--json", action="store_true", help="status as JSON")
    parser.set_defaults(func=_run)
