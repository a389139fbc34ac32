"""docker-compose.yml and the Dockerfile describe the same stack as the local one (checked without Docker)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.core import topics

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
SERVICES = ("kafka", "postgres", "prometheus", "alertmanager", "grafana", "ingest", "processor", "ledger")
TOLLGATE_SERVICES = ("ingest", "processor", "ledger")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(document, dict)
    return document


def test_compose_names_every_service(compose: dict[str, Any]) -> None:
    assert set(SERVICES) <= set(compose["services"])


def test_kafka_is_a_single_kraft_node(compose: dict[str, Any]) -> None:
    kafka = compose["services"]["kafka"]
    assert kafka["image"] == "apache/kafka:3.9.1"
    env = kafka["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@kafka:9093"
    for key in ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
                "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"):
        assert env[key] == 1
    assert "healthcheck" in kafka


def test_topics_created_by_compose_are_the_core_topics(compose: dict[str, Any]) -> None:
    script = "\n".join(compose["services"]["kafka-init"]["command"])
    created = set(re.findall(r"--topic (\S+)", script))
    assert created == set(topics.ALL_TOPICS)
    for name in topics.COMPACTED_TOPICS:
        assert re.search(rf"--topic {re.escape(name)} .*cleanup\.policy=compact", script)


@pytest.mark.parametrize("name", TOLLGATE_SERVICES)
def test_tollgate_service_has_healthcheck_command_and_deps(compose: dict[str, Any], name: str) -> None:
    service = compose["services"][name]
    assert service["command"] == ["serve", name]
    assert service["image"] == "tollgate:local" and service["build"] == "."
    test = " ".join(service["healthcheck"]["test"])
    assert "/readyz" in test
    depends = service["depends_on"]
    assert depends["kafka-init"]["condition"] == "service_completed_successfully"
    if name == "ledger":
        assert depends["postgres"]["condition"] == "service_healthy"
    env = service["environment"]
    assert env["TOLLGATE_KAFKA_BOOTSTRAP"] == "kafka:9092"


def test_infrastructure_has_healthchecks_and_mounts_deploy(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in ("kafka", "postgres", "prometheus", "alertmanager"):
        assert "healthcheck" in services[name], name
    assert "./deploy/prometheus:/etc/prometheus:ro" in services["prometheus"]["volumes"]
    assert "./deploy/alertmanager:/etc/alertmanager:ro" in services["alertmanager"]["volumes"]
    assert "./deploy/grafana/provisioning:/etc/grafana/provisioning:ro" in services["grafana"]["volumes"]
    assert services["postgres"]["image"] == "postgres:16"


def test_no_default_secrets_and_ports_on_localhost(compose: dict[str, Any]) -> None:
    text = COMPOSE.read_text()
    assert "POSTGRES_PASSWORD: ${POSTGRES_PASSWORD:?" in text
    assert "GF_SECURITY_ADMIN_PASSWORD: ${GRAFANA_ADMIN_PASSWORD:?" in text
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond localhost"


def test_dockerfile_builds_one_image_for_all_services() -> None:
    text = DOCKERFILE.read_text()
    assert re.search(r"^FROM python:3\.11-slim\b", text, re.MULTILINE)
    assert re.search(r"^COPY schemas \./schemas$", text, re.MULTILINE)
    assert re.search(r"^RUN pip install .*-e \.", text, re.MULTILINE)
    assert re.search(r'^ENTRYPOINT \["tollgate"\]$', text, re.MULTILINE)
    assert re.search(r"^USER (?!0\b|root\b)", text, re.MULTILINE), "the image must not run as root"
