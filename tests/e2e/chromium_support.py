"""Headless Chromium (Debian's `chromium`) for the e2e tier: render a page, read its DOM and console."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--enable-logging=stderr",
         "--v=0")  # fmt: skip


@dataclass(frozen=True)
class Rendered:
    """What Chromium made of a page: its DOM after rendering, and every console message it logged."""

    dom: str
    console: list[str]


def chromium() -> str:
    """The browser binary; `make test` installs it (scripts/install-system.sh)."""
    found = shutil.which("chromium")
    assert found, "chromium is not installed: run `make install` (scripts/install-system.sh)"
    return found


def run(page: Path, workdir: Path, *action: str) -> subprocess.CompletedProcess[str]:
    """One Chromium run on `page` with a fresh profile (as root: --no-sandbox)."""
    profile = workdir / f"profile-{len(list(workdir.glob('profile-*')))}"
    argv = [chromium(), *FLAGS, f"--user-data-dir={profile}", *action, page.resolve().as_uri()]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=True)  # noqa: S603


def render(page: Path, workdir: Path) -> Rendered:
    """The rendered DOM and the console lines (`INFO:CONSOLE` in Chromium's log)."""
    done = run(page, workdir, "--dump-dom")
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    return Rendered(done.stdout, console)


def screenshot(page: Path, workdir: Path, png: Path, size: str = "1280,4000") -> Path:
    """A PNG of the page, `size` pixels wide,high."""
    run(page, workdir, f"--screenshot={png}", f"--window-size={size}", "--hide-scrollbars")
    return png
