"""Where the local stack lives and which binaries it runs; nothing here starts anything."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from services.stack.errors import PartFailed

REPO_ROOT = Path(__file__).resolve().parents[2]
PARTS = ("kafka", "postgres", "prometheus", "alertmanager")
PG_ROOT = Path("/usr/lib/postgresql")
INSTALL_HINT = "run `make install` (scripts/install-system.sh)"


def find_pg_bin_dir(root: Path = PG_ROOT) -> Path:
    """Return the newest /usr/lib/postgresql/<version>/bin that has initdb (not the /usr/local wrappers)."""
    found = sorted(
        (path.parent for path in root.glob("*/bin/initdb")),
        key=lambda bin_dir: int(bin_dir.parent.name) if bin_dir.parent.name.isdigit() else 0,
    )
    if not found:
        raise PartFailed("postgres", f"no PostgreSQL binaries under {root}/*/bin: {INSTALL_HINT}")
    return found[-1]


def find_binary(part: str, *names: str) -> str:
    """Return the path of the first of `names` on PATH, or fail naming the part."""
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    raise PartFailed(part, f"none of {', '.join(names)} found on PATH: {INSTALL_HINT}")


@dataclass(frozen=True)
class StackConfig:
    """Settings of one local stack; `ports` and binary paths override the defaults (tests use them)."""

    stack_dir: Path
    repo_root: Path = REPO_ROOT
    parts: tuple[str, ...] = PARTS
    partitions: int = 6
    kafka_libs: Path | None = None
    kafka_heap: str = "512m"
    java: str = "java"
    pg_bin_dir: Path | None = None
    prometheus_bin: str | None = None
    alertmanager_bin: str | None = None
    ports: Mapping[str, int] = field(default_factory=dict)
    ready_timeout: float = 90.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, stack_dir: Path | None = None) -> StackConfig:
        """Build from TOLLGATE_STACK_DIR, TOLLGATE_KAFKA_LIBS and TOLLGATE_STACK_PARTITIONS."""
        env = os.environ if environ is None else environ
        directory = stack_dir or Path(env.get("TOLLGATE_STACK_DIR") or REPO_ROOT / ".stack")
        libs = env.get("TOLLGATE_KAFKA_LIBS")
        return cls(
            stack_dir=Path(directory).resolve(),
            kafka_libs=Path(libs) if libs else None,
            partitions=int(env.get("TOLLGATE_STACK_PARTITIONS", "6")),
        )

    @property
    def libs_dir(self) -> Path:
        """The Kafka jars directory."""
        return self.kafka_libs or self.repo_root / ".cache" / "kafka" / "libs"

    @property
    def kafka_pom(self) -> Path:
        """The pom.xml whose runtime dependencies are the broker."""
        return self.repo_root / "deploy" / "local" / "kafka" / "pom.xml"

    @property
    def kafka_log4j(self) -> Path:
        """The broker's log4j configuration."""
        return self.repo_root / "deploy" / "local" / "kafka" / "log4j.properties"

    @property
    def state_path(self) -> Path:
        """The JSON state file of this stack."""
        return self.stack_dir / "state.json"

    def part_dir(self, part: str) -> Path:
        """The working directory of one part."""
        return self.stack_dir / part

    def log_path(self, part: str) -> Path:
        """The log file of one part's process (PostgreSQL logs inside its own directory)."""
        return self.stack_dir / "logs" / f"{part}.log"
