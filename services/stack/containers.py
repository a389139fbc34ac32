"""The same stack from Docker images via testcontainers, for machines with a Docker engine (tests only)."""

from __future__ import annotations

import logging
import secrets
import shutil
import subprocess
import time
from typing import Any

from services.stack.errors import StackError
from services.stack.kafka import create_topics
from services.stack.process import http_ok
from services.stack.state import StackInfo

log = logging.getLogger(__name__)

KAFKA_IMAGE = "confluentinc/cp-kafka:7.7.1"
POSTGRES_IMAGE = "postgres:16"
PROMETHEUS_IMAGE = "prom/prometheus:v2.53.0"
ALERTMANAGER_IMAGE = "prom/alertmanager:v0.27.0"


def docker_available(timeout: float = 5.0) -> bool:
    """Return whether a Docker engine answers `docker info` quickly."""
    docker = shutil.which("docker")
    if docker is None:
        return False
    try:
        done = subprocess.run([docker, "info"], capture_output=True, timeout=timeout, check=False)  # noqa: S603
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def _wait_http(url: str, timeout: float = 60.0) -> None:
    ready, deadline = http_ok(url), time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise StackError(f"container not ready: {url}")
        time.sleep(0.5)


class ContainerStack:
    """Kafka, PostgreSQL, Prometheus and Alertmanager as containers; `up` returns a `StackInfo`."""

    def __init__(self, partitions: int = 6) -> None:
        self.partitions = partitions
        self._containers: list[Any] = []

    def up(self) -> StackInfo:
        """Start the containers and create the topics and roles."""
        try:
            return self._up()
        except Exception as exc:
            self.down()
            raise StackError(f"container stack failed to start: {exc}") from exc

    def _up(self) -> StackInfo:
        from testcontainers.core.container import DockerContainer
        from testcontainers.kafka import KafkaContainer
        from testcontainers.postgres import PostgresContainer

        kafka = self._start(KafkaContainer(KAFKA_IMAGE).with_kraft())
        bootstrap = kafka.get_bootstrap_server()
        create_topics(bootstrap, self.partitions)
        password = secrets.token_urlsafe(18)
        pg = self._start(
            PostgresContainer(POSTGRES_IMAGE, username="tollgate_owner", password=password, dbname="tollgate")
        )
        owner_url = pg.get_connection_url(driver=None)
        app_url = self._create_app_role(owner_url)
        urls = {}
        for name, image, port in (
            ("prometheus", PROMETHEUS_IMAGE, 9090),
            ("alertmanager", ALERTMANAGER_IMAGE, 9093),
        ):
            container = self._start(DockerContainer(image).with_exposed_ports(port))
            urls[name] = f"http://{container.get_container_host_ip()}:{container.get_exposed_port(port)}"
            _wait_http(f"{urls[name]}/-/ready")
        return StackInfo(bootstrap, owner_url, app_url, urls["prometheus"], urls["alertmanager"], None)

    def _start(self, container: Any) -> Any:
        self._containers.append(container)
        return container.start()

    @staticmethod
    def _create_app_role(owner_url: str) -> str:
        import psycopg
        from psycopg import sql

        password = secrets.token_urlsafe(18)
        with psycopg.connect(owner_url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE ROLE tollgate_app LOGIN PASSWORD {}").format(sql.Literal(password)))
        host_part = owner_url.rsplit("@", 1)[1]
        return f"postgresql://tollgate_app:{password}@{host_part}"

    def down(self) -> None:
        """Stop every container started."""
        while self._containers:
            container = self._containers.pop()
            try:
                container.stop()
            except Exception:
                log.exception("stopping container %s failed", container)
