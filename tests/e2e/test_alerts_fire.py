"""Ops see it: Prometheus scrapes the real services and fires the business alerts; Alertmanager gets them."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from services.demo import story

WANTED = {"TollgateGovernmentAccessUnnotified", "TollgateVolumeBreach"}


def _poll(
    fetch: Callable[[], list[dict[str, Any]]], timeout: float = 90.0, licensee: str = "omnisoft",
    wanted: frozenset[str] | set[str] = WANTED,
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    found: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        found = fetch()
        if {a["labels"]["alertname"] for a in found if a["labels"].get("licensee") == licensee} >= wanted:
            return found
        time.sleep(1.0)
    return found


def _prometheus_firing(url: str) -> list[dict[str, Any]]:
    alerts = httpx.get(f"{url}/api/v1/alerts", timeout=5.0).json()["data"]["alerts"]
    return [a for a in alerts if a["state"] == "firing"]


def _alertmanager_active(url: str) -> list[dict[str, Any]]:
    alerts: list[dict[str, Any]] = httpx.get(f"{url}/api/v2/alerts", timeout=5.0).json()
    return alerts


def test_prometheus_fires_the_government_and_volume_breach_alerts(demo_run: story.DemoRun) -> None:
    firing = _poll(lambda: _prometheus_firing(demo_run.stack.prometheus_url))
    names = {a["labels"]["alertname"] for a in firing if a["labels"].get("licensee") == "omnisoft"}
    assert names >= WANTED, firing
    breach = next(
        a for a in firing
        if a["labels"]["alertname"] == "TollgateVolumeBreach" and a["labels"].get("licensee") == "omnisoft"
    )  # fmt: skip
    assert breach["labels"]["severity"] == "critical"
    assert "omnisoft" in breach["annotations"]["description"]


def test_alertmanager_receives_them(demo_run: story.DemoRun) -> None:
    received = _poll(lambda: _alertmanager_active(demo_run.stack.alertmanager_url))
    names = {a["labels"]["alertname"] for a in received if a["labels"].get("licensee") == "omnisoft"}
    assert names >= WANTED, received


def test_a_licensee_within_its_agreement_raises_no_alert_in_prometheus(demo_run: story.DemoRun) -> None:
    _poll(lambda: _prometheus_firing(demo_run.stack.prometheus_url))
    firing = _prometheus_firing(demo_run.stack.prometheus_url)
    assert [a for a in firing if a["labels"].get("licensee") == "pebble"] == []


def test_a_licensee_groups_breach_fires_under_the_group_and_not_under_its_members(
    demo_run: story.DemoRun,
) -> None:
    wanted = {"TollgateVolumeWarning", "TollgateVolumeBreach"}  # 600 calls of 500: not severe (750)
    firing = _poll(lambda: _prometheus_firing(demo_run.stack.prometheus_url), licensee="halcyon",
                   wanted=wanted)  # fmt: skip
    group = {a["labels"]["alertname"] for a in firing
             if a["labels"].get("licensee") == "halcyon" and a["labels"].get("category") == "business"}
    assert group == wanted, firing
    members = [a for a in firing if a["labels"].get("licensee") in ("halcyon-news", "halcyon-tv")]
    assert members == []
