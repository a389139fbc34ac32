"""Kafka 3.9 in KRaft mode from Maven Central jars: install, configure, start, create topics."""

from __future__ import annotations

import base64
import hashlib
import logging
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from services.stack.config import INSTALL_HINT, StackConfig
from services.stack.errors import PartFailed
from services.stack.kafka_topics import create_topics as create_topics  # re-exported: callers import it
from services.stack.kafka_topics import topic_specs as topic_specs  # here, as before the split
from services.stack.process import log_has, spawn, wait_until

log = logging.getLogger(__name__)

PART = "kafka"
READY_LINE = "Kafka Server started"
KEY_JARS = ("kafka_2.13-3.9.1.jar", "kafka-clients-3.9.1.jar", "kafka-tools-3.9.1.jar", "reload4j-1.2.25.jar")
MARKER = ".complete"


def _pom_digest(pom: Path) -> str:
    return hashlib.sha256(pom.read_bytes()).hexdigest()


def jars_complete(libs: Path, pom: Path) -> bool:
    """Return whether `libs` holds a finished copy of the jars `pom` names."""
    marker = libs / MARKER
    if not marker.is_file() or not pom.is_file():
        return False
    if marker.read_text().strip() != _pom_digest(pom):
        return False
    return all((libs / jar).is_file() for jar in KEY_JARS)


def install_jars(libs: Path, pom: Path, mvn: str = "mvn") -> bool:
    """Copy the broker's runtime jars into `libs` with Maven unless complete; return whether it ran."""
    if jars_complete(libs, pom):
        log.info("kafka jars already in %s", libs)
        return False
    if shutil.which(mvn) is None:
        raise PartFailed(PART, f"`{mvn}` not found: {INSTALL_HINT}")
    libs = libs.resolve()
    libs.mkdir(parents=True, exist_ok=True)
    mvn_log = libs.parent / "mvn.log"
    argv = [
        mvn,
        "-B",
        "-q",
        "-f",
        str(pom.resolve()),
        "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies",
        "-DincludeScope=runtime",
        f"-DoutputDirectory={libs}",
    ]
    started = time.monotonic()
    with mvn_log.open("wb") as out:
        done = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, check=False, timeout=1800)  # noqa: S603
    if done.returncode != 0:
        raise PartFailed(PART, f"mvn copy-dependencies failed with code {done.returncode}", mvn_log)
    (libs / MARKER).write_text(_pom_digest(pom))
    log.info("kafka jars copied to %s in %.1fs", libs, time.monotonic() - started)
    return True


def server_properties(
    data_dir: Path,
    port: int,
    controller_port: int,
    partitions: int,
    overrides: Mapping[str, str] | None = None,
) -> str:
    """Return a single-node KRaft broker+controller configuration on 127.0.0.1 (`overrides` win)."""
    settings = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{controller_port}",
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(data_dir),
        "num.partitions": str(partitions),
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        "auto.create.topics.enable": "true",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": str(partitions),
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": str(partitions),
        "group.initial.rebalance.delay.ms": "0",
        # Replays carry old timestamps: time-based retention would delete them at once on a dev stack.
        "log.retention.ms": "-1",
        "log.cleaner.backoff.ms": "1000",
        **(overrides or {}),
    }
    return "".join(f"{key}={value}\n" for key, value in settings.items())


def cluster_id(random_bytes: Callable[[], bytes] = lambda: uuid.uuid4().bytes) -> str:
    """Return a fresh Kafka cluster id (URL-safe base64 of a UUID, unpadded), never starting with `-`:
    StorageTool would read such an id (1 in 64) as an option and refuse to format, as Kafka's own
    `Uuid.randomUuid` avoids."""
    while True:
        found = base64.urlsafe_b64encode(random_bytes()).decode().rstrip("=")
        if not found.startswith("-"):
            return found


def _classpath(cfg: StackConfig) -> str:
    if not jars_complete(cfg.libs_dir, cfg.kafka_pom):
        hint = f"run `tollgate stack install` ({INSTALL_HINT})"
        raise PartFailed(PART, f"jars missing in {cfg.libs_dir}: {hint}")
    return f"{cfg.libs_dir}/*"


def format_storage(cfg: StackConfig, props: Path, log_path: Path, extra: Sequence[str] = ()) -> None:
    """Format the log dir of `props` with a fresh cluster id; `extra` goes to StorageTool (`--add-scram`)."""
    argv = [
        cfg.java,
        "-cp",
        _classpath(cfg),
        f"-Dlog4j.configuration=file:{cfg.kafka_log4j}",
        "kafka.tools.StorageTool",
        "format",
        "-t",
        cluster_id(),
        "-c",
        str(props),
        *extra,
    ]
    # One retry: a loaded machine has been seen to fail the first JVM run; `--ignore-formatted` keeps a
    # directory the first attempt managed to format.
    for attempt in (argv, [*argv, "--ignore-formatted"]):
        try:
            with log_path.open("ab") as out:
                done = subprocess.run(attempt, stdout=out, stderr=subprocess.STDOUT, check=False, timeout=120)  # noqa: S603
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise PartFailed(PART, f"storage format failed: {exc}", log_path) from exc
        if done.returncode == 0:
            return
    raise PartFailed(PART, f"storage format exited with code {done.returncode}", log_path)


def start(cfg: StackConfig, ports: Mapping[str, int], on_spawn: Callable[[int], None]) -> dict[str, Any]:
    """Format a fresh log dir, start the broker, wait for its ready line, create the topics."""
    work = cfg.part_dir(PART)
    data_dir, props, log_path = work / "data", work / "server.properties", cfg.log_path(PART)
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    props.write_text(server_properties(data_dir, ports["kafka"], ports["kafka_controller"], cfg.partitions))
    format_storage(cfg, props, log_path)
    pid = spawn(PART, broker_argv(cfg, props), log_path)
    on_spawn(pid)
    wait_until(PART, log_has(log_path, READY_LINE), timeout=cfg.ready_timeout, log_path=log_path, pid=pid)
    bootstrap = f"127.0.0.1:{ports['kafka']}"
    try:
        create_topics(bootstrap, cfg.partitions)
    except Exception as exc:
        raise PartFailed(PART, f"creating topics failed: {exc}", log_path) from exc
    return {
        "pid": pid,
        "port": ports["kafka"],
        "controller_port": ports["kafka_controller"],
        "bootstrap": bootstrap,
        "log": str(log_path),
        "dir": str(work),
    }


def restart(cfg: StackConfig, ports: Mapping[str, int], on_spawn: Callable[[int], None]) -> dict[str, Any]:
    """Start the broker again on its existing log dir and ports (no format, no wipe); wait until ready."""
    work = cfg.part_dir(PART)
    props, log_path = work / "server.properties", cfg.log_path(PART)
    if not (work / "data" / "meta.properties").is_file() or not props.is_file():
        raise PartFailed(PART, f"nothing to restart in {work}: start the stack first", log_path)
    since = log_path.stat().st_size if log_path.is_file() else 0
    pid = spawn(PART, broker_argv(cfg, props), log_path)
    on_spawn(pid)
    ready = log_has(log_path, READY_LINE, since)
    wait_until(PART, ready, timeout=cfg.ready_timeout, log_path=log_path, pid=pid, what="ready again")
    return {"pid": pid}


def broker_argv(cfg: StackConfig, props: Path) -> list[str]:
    """The JVM command line of a broker running `props`."""
    return [
        cfg.java,
        f"-Xms{cfg.kafka_heap}",
        f"-Xmx{cfg.kafka_heap}",
        "-Djava.awt.headless=true",
        "-cp",
        _classpath(cfg),
        f"-Dlog4j.configuration=file:{cfg.kafka_log4j}",
        "kafka.Kafka",
        str(props),
    ]
