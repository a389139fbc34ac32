"""`tollgate agreements validate FILE` checks a file as `load` would and publishes nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from services.demo.scenario import AGREEMENTS_FILE

ROOT = Path(__file__).resolve().parents[3]


def _validate(path: Path) -> subprocess.CompletedProcess[str]:
    # Our own CLI with fixed arguments; no Kafka is configured, so nothing could be published.
    return subprocess.run(  # noqa: S603
        [sys.executable, "-m", "services.cli", "agreements", "validate", str(path)],
        cwd=ROOT, capture_output=True, text=True, timeout=60, env={"PATH": ""},
    )  # fmt: skip


def test_a_valid_file_is_listed_licensee_by_licensee_and_nothing_is_published() -> None:
    result = _validate(AGREEMENTS_FILE)
    assert result.returncode == 0, result.stderr
    assert "ok  omnisoft: from 2026-01-01T00:00:00+00:00 until open-ended" in result.stdout
    assert result.stdout.rstrip().endswith("agreements valid; nothing published")


def test_a_bad_date_is_named_with_the_agreement_index_and_field(tmp_path: Path) -> None:
    text = AGREEMENTS_FILE.read_text(encoding="utf-8").replace('"2026-03-01T00:00:00Z"', '"2026-02-30"', 1)
    bad = tmp_path / "agreements.yaml"
    bad.write_text(text, encoding="utf-8")
    result = _validate(bad)
    assert result.returncode == 2
    assert "agreement 1: effective_from:" in result.stderr
    assert "valid" not in result.stdout
