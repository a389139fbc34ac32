"""Prometheus (file-based scrape targets, the repo's rules) and Alertmanager as local processes."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from services.stack.config import StackConfig, find_binary
from services.stack.process import http_ok, spawn, wait_until

log = logging.getLogger(__name__)

PROMETHEUS = "prometheus"
ALERTMANAGER = "alertmanager"
MINIMAL_ALERTMANAGER = {
    "route": {"receiver": "null", "group_wait": "1s", "group_interval": "1s", "repeat_interval": "1h"},
    "receivers": [{"name": "null"}],
}


def prometheus_config(stack_dir: Path, repo_root: Path, alertmanager_port: int | None) -> dict[str, Any]:
    """Return the local Prometheus config: 1s intervals, file_sd targets, the repo's rule files."""
    targets = stack_dir / PROMETHEUS / "targets"
    config: dict[str, Any] = {
        "global": {
            "scrape_interval": "1s",
            "evaluation_interval": "1s",
            "external_labels": {"system": "tollgate"},
        },
        "rule_files": [str(repo_root / "deploy" / "prometheus" / "rules" / "*.yml")],
        "scrape_configs": [
            {"job_name": "prometheus", "static_configs": [{"targets": []}]},
            {
                "job_name": "tollgate",
                "file_sd_configs": [{"files": [str(targets / "*.json")], "refresh_interval": "5s"}],
            },
        ],
    }
    if alertmanager_port is not None:
        config["alerting"] = {
            "alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{alertmanager_port}"]}]}]
        }
    return config


def _target_file(targets_dir: Path, job: str, address: str) -> Path:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{job}-{address}")
    return targets_dir / f"{slug}.json"


def register_scrape_target(
    targets_dir: Path, job: str, address: str, labels: Mapping[str, str] | None = None
) -> Path:
    """Make Prometheus scrape `address` (host:port, /metrics) under `job`; return the file written."""
    targets_dir.mkdir(parents=True, exist_ok=True)
    path = _target_file(targets_dir, job, address)
    entry = [{"targets": [address], "labels": {**(labels or {}), "job": job}}]
    scratch = path.with_suffix(".tmp")
    scratch.write_text(json.dumps(entry))
    scratch.replace(path)
    log.info("prometheus scrape target %s registered as job %s", address, job)
    return path


def unregister_scrape_target(targets_dir: Path, job: str, address: str) -> None:
    """Stop scraping `address` under `job`."""
    _target_file(targets_dir, job, address).unlink(missing_ok=True)


def _serve(
    part: str,
    cfg: StackConfig,
    port: int,
    command: list[str],
    flags: list[str],
    on_spawn: Callable[[int], None],
) -> dict[str, Any]:
    """Run `command` listening on 127.0.0.1:`port` with `flags`; wait for /-/ready; return its facts."""
    work, log_path = cfg.part_dir(part), cfg.log_path(part)
    pid = spawn(part, [*command, f"--web.listen-address=127.0.0.1:{port}", *flags], log_path)
    on_spawn(pid)
    url = f"http://127.0.0.1:{port}"
    wait_until(part, http_ok(f"{url}/-/ready"), timeout=cfg.ready_timeout, log_path=log_path, pid=pid)
    return {"pid": pid, "port": port, "url": url, "log": str(log_path), "dir": str(work)}


def start_prometheus(
    cfg: StackConfig, ports: Mapping[str, int], on_spawn: Callable[[int], None]
) -> dict[str, Any]:
    """Write the config, start Prometheus on 127.0.0.1, wait for /-/ready."""
    binary = cfg.prometheus_bin or find_binary(PROMETHEUS, "prometheus")
    work, port = cfg.part_dir(PROMETHEUS), ports[PROMETHEUS]
    targets = work / "targets"
    targets.mkdir(parents=True, exist_ok=True)
    alertmanager_port = ports.get(ALERTMANAGER) if ALERTMANAGER in cfg.parts else None
    config = prometheus_config(cfg.stack_dir, cfg.repo_root, alertmanager_port)
    config["scrape_configs"][0]["static_configs"][0]["targets"] = [f"127.0.0.1:{port}"]
    config_path = work / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    flags = [f"--storage.tsdb.path={work / 'data'}", "--web.enable-lifecycle", "--log.level=info"]
    info = _serve(PROMETHEUS, cfg, port, [binary, f"--config.file={config_path}"], flags, on_spawn)
    return {**info, "targets_dir": str(targets), "config": str(config_path)}


def _alertmanager_config(cfg: StackConfig, work: Path) -> Path:
    repo_config = cfg.repo_root / "deploy" / "alertmanager" / "alertmanager.yml"
    if repo_config.is_file():
        return repo_config
    generated = work / "alertmanager.yml"
    generated.write_text(yaml.safe_dump(MINIMAL_ALERTMANAGER, sort_keys=False))
    return generated


def start_alertmanager(
    cfg: StackConfig, ports: Mapping[str, int], on_spawn: Callable[[int], None]
) -> dict[str, Any]:
    """Start Alertmanager on 127.0.0.1 without clustering, wait for /-/ready."""
    binary = cfg.alertmanager_bin or find_binary(ALERTMANAGER, "prometheus-alertmanager", "alertmanager")
    work, port = cfg.part_dir(ALERTMANAGER), ports[ALERTMANAGER]
    data = work / "data"
    data.mkdir(parents=True, exist_ok=True)
    config_path = _alertmanager_config(cfg, work)
    flags = [f"--storage.path={data}", "--cluster.listen-address="]
    info = _serve(ALERTMANAGER, cfg, port, [binary, f"--config.file={config_path}"], flags, on_spawn)
    return {**info, "config": str(config_path)}
