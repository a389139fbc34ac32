"""The state file of a running stack and the connection facts derived from it."""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.stack.errors import StackError
from services.stack.prometheus import register_scrape_target, unregister_scrape_target

ENV_NAMES = {
    "kafka_bootstrap": "TOLLGATE_KAFKA_BOOTSTRAP",
    "database_url": "TOLLGATE_DATABASE_URL",
    "app_database_url": "TOLLGATE_APP_DATABASE_URL",
    "prometheus_url": "TOLLGATE_PROMETHEUS_URL",
    "alertmanager_url": "TOLLGATE_ALERTMANAGER_URL",
}
STACK_DIR_ENV = "TOLLGATE_STACK_DIR"


def load_state(path: Path) -> dict[str, Any] | None:
    """Return the recorded state, or None when there is none (or it is unreadable)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def save_state(path: Path, state: Mapping[str, Any]) -> None:
    """Write the state atomically (readable by the owner only: it holds passwords)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_suffix(".tmp")
    fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(state, out, indent=2, sort_keys=True)
    scratch.replace(path)


@dataclass(frozen=True)
class StackInfo:
    """How to reach a running stack; an empty string means that part is not running."""

    kafka_bootstrap: str
    database_url: str
    app_database_url: str
    prometheus_url: str
    alertmanager_url: str
    stack_dir: Path | None = None

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> StackInfo:
        """Derive the connection facts from a state file's content."""
        parts = state.get("parts", {})

        def get(part: str, key: str) -> str:
            return str(parts.get(part, {}).get(key, ""))

        return cls(
            kafka_bootstrap=get("kafka", "bootstrap"),
            database_url=get("postgres", "database_url"),
            app_database_url=get("postgres", "app_database_url"),
            prometheus_url=get("prometheus", "url"),
            alertmanager_url=get("alertmanager", "url"),
            stack_dir=Path(state["stack_dir"]) if state.get("stack_dir") else None,
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> StackInfo | None:
        """Read a stack someone else runs from TOLLGATE_* variables; None unless Kafka's is set."""
        if not environ.get(ENV_NAMES["kafka_bootstrap"]):
            return None
        values = {field: environ.get(name, "") for field, name in ENV_NAMES.items()}
        stack_dir = environ.get(STACK_DIR_ENV)
        return cls(**values, stack_dir=Path(stack_dir) if stack_dir else None)

    def env(self) -> dict[str, str]:
        """Return the TOLLGATE_* variables that point services at this stack."""
        values = {name: getattr(self, field) for field, name in ENV_NAMES.items() if getattr(self, field)}
        if self.stack_dir is not None:
            values[STACK_DIR_ENV] = str(self.stack_dir)
        return values

    def shell_exports(self) -> str:
        """Return `export NAME=value` lines for `eval "$(tollgate stack env)"`."""
        return "\n".join(f"export {name}={shlex.quote(value)}" for name, value in self.env().items())

    @property
    def targets_dir(self) -> Path | None:
        """Where Prometheus looks for file-based scrape targets."""
        return self.stack_dir / "prometheus" / "targets" if self.stack_dir is not None else None

    def register_scrape_target(self, job: str, address: str, labels: Mapping[str, str] | None = None) -> Path:
        """Make this stack's Prometheus scrape `address` (host:port) under `job`."""
        if self.targets_dir is None:
            raise StackError("this stack has no known directory (set TOLLGATE_STACK_DIR)")
        return register_scrape_target(self.targets_dir, job, address, labels)

    def unregister_scrape_target(self, job: str, address: str) -> None:
        """Stop scraping `address` under `job`."""
        if self.targets_dir is not None:
            unregister_scrape_target(self.targets_dir, job, address)
