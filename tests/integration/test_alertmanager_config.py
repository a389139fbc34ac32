"""deploy/alertmanager/alertmanager.yml on a real Alertmanager: the inhibition rules mute what they should.

amtool can test routes offline but not inhibition, so this starts its own Alertmanager (Debian's
`prometheus-alertmanager`) on a free 127.0.0.1 port, posts alerts and reads back their status.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"

pytestmark = pytest.mark.integration


def _binary() -> str:
    for name in ("prometheus-alertmanager", "alertmanager"):
        path = shutil.which(name)
        if path:
            return path
    message = "prometheus-alertmanager is not installed (scripts/install-system.sh installs it)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message}; CI must install it")
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("alertmanager")
    port = _free_port()
    log = (workdir / "alertmanager.log").open("wb")
    process = subprocess.Popen(  # noqa: S603 - a fixed binary and our own arguments
        [
            _binary(), f"--config.file={CONFIG}", f"--storage.path={workdir}",
            f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=",
        ],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                pytest.fail(f"alertmanager exited: {(workdir / 'alertmanager.log').read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("alertmanager did not become ready in 30s")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


def _alert(name: str, severity: str, **labels: str) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "labels": {"alertname": name, "severity": severity, **labels},
        "annotations": {"summary": name},
        "startsAt": now.isoformat(),
        "endsAt": (now + timedelta(minutes=10)).isoformat(),
    }


Status = dict[tuple[str, str], bool]


def _status(url: str, deadline_s: float, expected: Status) -> Status:
    """(alertname, licensee) -> inhibited, polled until it equals `expected` or the deadline passes."""
    deadline = time.monotonic() + deadline_s
    while True:
        alerts = httpx.get(f"{url}/api/v2/alerts", timeout=5).json()
        seen = {
            (a["labels"]["alertname"], a["labels"].get("licensee", "")): bool(a["status"]["inhibitedBy"])
            for a in alerts
        }
        if seen == expected or time.monotonic() > deadline:
            return seen
        time.sleep(0.2)


def test_higher_volume_levels_inhibit_lower_ones_for_the_same_licensee_only(alertmanager: str) -> None:
    alerts = [
        _alert("TollgateVolumeWarning", "warning", licensee="acme", rule="volume.warning"),
        _alert("TollgateVolumeBreach", "critical", licensee="acme", rule="volume.breach"),
        _alert("TollgateVolumeWarning", "warning", licensee="globex", rule="volume.warning"),
        _alert("TollgateVolumeBreach", "critical", licensee="initech", rule="volume.breach"),
        _alert("TollgateVolumeSevere", "critical", licensee="initech", rule="volume.severe"),
        _alert("TollgateGovernmentAccessUnnotified", "critical", licensee="acme",
               rule="government.unnotified"),
    ]
    response = httpx.post(f"{alertmanager}/api/v2/alerts", json=alerts, timeout=5)
    assert response.status_code == 200, response.text
    expected = {
        ("TollgateVolumeWarning", "acme"): True,      # breach for acme mutes acme's warning
        ("TollgateVolumeBreach", "acme"): False,
        ("TollgateVolumeWarning", "globex"): False,   # another licensee's breach does not
        ("TollgateVolumeBreach", "initech"): True,    # severe mutes breach
        ("TollgateVolumeSevere", "initech"): False,
        ("TollgateGovernmentAccessUnnotified", "acme"): False,  # other rules are never muted by volume
    }
    assert _status(alertmanager, 15, expected) == expected
