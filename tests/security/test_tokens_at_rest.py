"""Tokens: only their SHA-256 is at rest, the file is the owner's alone, and verification compares in
constant time whether or not the token id exists."""

from __future__ import annotations

import ast
import hashlib
import hmac
import inspect
import stat
from pathlib import Path
from typing import Any

import pytest

from services.core import tokens
from services.core.tokens import FileTokenStore


@pytest.fixture
def store(tmp_path: Path) -> FileTokenStore:
    return FileTokenStore(tmp_path / "tokens.json")


def test_the_token_file_holds_hashes_and_never_a_token_or_its_secret_part(store: FileTokenStore) -> None:
    minted = [store.create(f"t-{role}", role) for role in tokens.ROLES]
    text = store.path.read_text()
    for token in minted:
        secret = token.split("_", 2)[2]
        assert token not in text and secret not in text
        assert hashlib.sha256(token.encode()).hexdigest() in text


def test_the_token_file_is_readable_by_its_owner_only(store: FileTokenStore) -> None:
    store.create("gw", "ingest")
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600


def test_a_token_carries_256_bits_of_randomness() -> None:
    _, token = tokens.new_token()
    assert len(token.split("_", 2)[2]) >= 43  # token_urlsafe(32): 32 random bytes


@pytest.mark.parametrize("presented", [
    "right",
    "tg_{id}_wrong-secret",
    "tg_unknown_secret",
    "tg_{id}_" + "x" * 150,
    "not-a-token",
])  # fmt: skip
def test_every_verification_goes_through_compare_digest(
    store: FileTokenStore, monkeypatch: pytest.MonkeyPatch, presented: str
) -> None:
    token = store.create("gw", "ingest")
    token_id = token.split("_")[1]
    calls: list[tuple[Any, Any]] = []
    original = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return original(a, b)

    monkeypatch.setattr(tokens.hmac, "compare_digest", spy)
    value = token if presented == "right" else presented.format(id=token_id)
    principal = store.verify(value)
    assert (principal is not None) == (presented == "right")
    assert len(calls) == 1, "every token, known id or not, costs one constant-time compare"


def test_the_check_compares_digests_only_with_compare_digest() -> None:
    tree = ast.parse(inspect.getsource(tokens._check).lstrip())
    equalities = [node for node in ast.walk(tree) if isinstance(node, ast.Compare)
                  and any(isinstance(op, ast.Eq | ast.NotEq) for op in node.ops)]  # fmt: skip
    assert not equalities, "digests must not be compared with == or !="
    assert "hmac.compare_digest(" in inspect.getsource(tokens._check)


def test_a_revoked_token_is_refused_by_another_store_reading_the_same_file(store: FileTokenStore) -> None:
    token = store.create("gw", "ingest")
    reader = FileTokenStore(store.path, reload_seconds=0.0)
    assert reader.verify(token) is not None
    store.revoke(token.split("_")[1])
    assert reader.verify(token) is None
