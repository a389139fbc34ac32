"""Pure parts of the local stack: ports, configs, state, scrape targets, process helpers."""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from services.core import topics
from services.stack import PartFailed, StackInfo
from services.stack.kafka import cluster_id, jars_complete, server_properties, topic_specs
from services.stack.ports import free_ports, port_is_open
from services.stack.process import is_alive, stop_pid, tail
from services.stack.prometheus import prometheus_config, register_scrape_target, unregister_scrape_target
from services.stack.state import load_state, save_state


def test_free_ports_are_distinct_and_bindable_on_loopback() -> None:
    ports = free_ports(5)

    assert len(set(ports)) == 5
    for port in ports:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


def test_a_port_nobody_listens_on_is_not_open() -> None:
    assert not port_is_open(free_ports(1)[0])


def test_the_broker_config_is_single_node_kraft_on_loopback() -> None:
    props = dict(
        line.split("=", 1) for line in server_properties(Path("/d"), 9092, 9093, 6).splitlines() if line
    )

    assert props["process.roles"] == "broker,controller"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:9093"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"
    assert props["num.partitions"] == "6"
    assert props["transaction.state.log.min.isr"] == "1"
    assert props["group.initial.rebalance.delay.ms"] == "0"


def test_a_cluster_id_is_22_url_safe_characters() -> None:
    value = cluster_id()

    assert len(value) == 22
    assert set(value) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_a_cluster_id_never_starts_with_a_dash_which_the_storage_tool_would_take_for_an_option() -> None:
    draws = iter([b"\xf8" + bytes(15), b"\x01" * 16])  # the first encodes to "-...", the second does not

    value = cluster_id(lambda: next(draws))

    assert value == base64.urlsafe_b64encode(b"\x01" * 16).decode().rstrip("=")


def test_only_the_agreements_topic_is_compacted() -> None:
    specs = topic_specs(6)

    assert set(specs) == set(topics.ALL_TOPICS)
    assert {name for name, spec in specs.items() if spec["configs"].get("cleanup.policy") == "compact"} == {
        topics.AGREEMENTS
    }
    assert {spec["partitions"] for spec in specs.values()} == {6}


def test_jars_are_incomplete_without_the_marker(tmp_path: Path) -> None:
    pom = tmp_path / "pom.xml"
    pom.write_text("<project/>")

    assert not jars_complete(tmp_path / "libs", pom)


def test_prometheus_reads_target_files_and_the_repo_rules(tmp_path: Path) -> None:
    config = prometheus_config(tmp_path, Path("/repo"), 9093)

    assert config["global"]["scrape_interval"] == "1s"
    assert config["rule_files"] == ["/repo/deploy/prometheus/rules/*.yml"]
    assert config["scrape_configs"][1]["file_sd_configs"][0]["files"] == [
        str(tmp_path / "prometheus" / "targets" / "*.json")
    ]
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["127.0.0.1:9093"]


def test_a_registered_target_carries_its_job_label_and_can_be_removed(tmp_path: Path) -> None:
    path = register_scrape_target(tmp_path, "tollgate-ingest", "127.0.0.1:9101")

    assert json.loads(path.read_text()) == [
        {"targets": ["127.0.0.1:9101"], "labels": {"job": "tollgate-ingest"}}
    ]
    unregister_scrape_target(tmp_path, "tollgate-ingest", "127.0.0.1:9101")
    assert not path.exists()


def test_stack_info_round_trips_through_the_environment(tmp_path: Path) -> None:
    info = StackInfo(
        "127.0.0.1:1", "postgresql://o@h/db", "postgresql://a@h/db", "http://p", "http://a", tmp_path
    )

    assert StackInfo.from_env(info.env()) == info
    assert "export TOLLGATE_KAFKA_BOOTSTRAP=127.0.0.1:1" in info.shell_exports()
    assert StackInfo.from_env({}) is None


def test_state_is_saved_private_and_loaded_back(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    save_state(path, {"parts": {"kafka": {"pid": 1}}})

    assert load_state(path) == {"parts": {"kafka": {"pid": 1}}}
    assert path.stat().st_mode & 0o077 == 0
    assert load_state(tmp_path / "missing.json") is None


def test_a_part_failure_names_the_part_the_reason_and_the_log() -> None:
    error = PartFailed("kafka", "exited before it was ready", Path("/s/logs/kafka.log"))

    assert str(error) == "kafka: exited before it was ready (log: /s/logs/kafka.log)"


def test_a_stopped_process_is_no_longer_alive() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])

    assert is_alive(child.pid)
    assert stop_pid(child.pid, grace=5)
    child.wait(timeout=5)
    assert not is_alive(child.pid)


@pytest.mark.parametrize("lines", [1, 3])
def test_tail_returns_the_last_lines_of_a_log(tmp_path: Path, lines: int) -> None:
    log = tmp_path / "x.log"
    log.write_text("a\nb\nc\nd\n")

    assert tail(log, lines) == "\n".join(["a", "b", "c", "d"][-lines:])
