"""`tollgate tokens` mints tokens shown once, stores only hashes, lists without secrets, revokes by id."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.cli import main
from services.core.tokens import FileTokenStore


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def test_a_created_token_verifies_and_only_its_hash_is_stored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "tokens.json"
    code, out = _run(
        capsys,
        "tokens",
        "--file",
        str(path),
        "create",
        "--name",
        "gw",
        "--role",
        "ingest",
        "--source",
        "gateway-a",
        "--source",
        "gateway-b",
    )
    token = out.strip()
    assert code == 0
    principal = FileTokenStore(path).verify(token)
    assert principal is not None
    assert (principal.role, principal.sources) == ("ingest", ("gateway-a", "gateway-b"))
    assert token not in path.read_text()


def test_listing_shows_ids_and_roles_but_no_hashes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "tokens.json"
    _run(capsys, "tokens", "create", "--name", "finance-team", "--role", "finance", "--file", str(path))
    code, out = _run(capsys, "tokens", "list", "--file", str(path))
    record = json.loads(path.read_text())["tokens"][0]
    assert code == 0
    assert record["token_id"] in out and "finance-team" in out
    assert record["sha256"] not in out


def test_a_revoked_token_no_longer_verifies(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "tokens.json"
    monkeypatch.setenv("TOLLGATE_TOKENS_FILE", str(path))
    _, out = _run(capsys, "tokens", "create", "--name", "gw", "--role", "ingest")
    token = out.strip()
    assert _run(capsys, "tokens", "revoke", token.split("_")[1])[0] == 0
    assert FileTokenStore(path).verify(token) is None
    assert _run(capsys, "tokens", "revoke", "nosuchid")[0] == 1


def test_sources_apply_only_to_ingest_tokens(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = _run(
        capsys,
        "tokens",
        "--file",
        str(tmp_path / "t.json"),
        "create",
        "--name",
        "x",
        "--role",
        "auditor",
        "--source",
        "gw",
    )
    assert code == 2
