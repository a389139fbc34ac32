"""Bearer tokens, stored hashed: a file-backed store and an in-memory one behind one port."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

ROLES = ("ingest", "finance", "auditor")
_PREFIX = "tg"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a verified token speaks for."""

    token_id: str
    name: str
    role: str
    sources: tuple[str, ...] = ()

    def may_send(self, source: str) -> bool:
        """An ingest token bound to sources may send only those; an unbound one may send any."""
        return self.role == "ingest" and (not self.sources or source in self.sources)


@dataclass(slots=True)
class TokenRecord:
    """What is kept at rest: never the token itself, only its SHA-256."""

    token_id: str
    name: str
    role: str
    sha256: str
    sources: list[str] = field(default_factory=list)
    created_at: float = 0.0
    revoked: bool = False


class TokenStore(Protocol):
    """Port: verify a presented bearer token."""

    def verify(self, token: str) -> Principal | None: ...


def _digest(token: str) -> str:
    # Tokens carry 256 bits of randomness, so a fast hash is enough: there is nothing to brute-force.
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _token_id(token: str) -> str | None:
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != _PREFIX or not parts[1] or len(token) > 200:
        return None
    return parts[1]


def new_token() -> tuple[str, str]:
    """Mint a token: returns (token_id, token). The token is shown once and never stored."""
    token_id = secrets.token_hex(6)
    return token_id, f"{_PREFIX}_{token_id}_{secrets.token_urlsafe(32)}"


def _check(records: dict[str, TokenRecord], token: str) -> Principal | None:
    token_id = _token_id(token)
    record = records.get(token_id) if token_id else None
    # Compare even when the id is unknown, so timing does not tell which ids exist.
    expected = record.sha256 if record else "0" * 64
    matches = hmac.compare_digest(expected, _digest(token))
    if record is None or record.revoked or not matches:
        return None
    return Principal(record.token_id, record.name, record.role, tuple(record.sources))


class InMemoryTokenStore:
    """Tokens held in memory; for tests and embedded use."""

    def __init__(self) -> None:
        self.records: dict[str, TokenRecord] = {}

    def create(self, name: str, role: str, sources: list[str] | None = None) -> str:
        """Create a token and return it in clear, once."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}")
        token_id, token = new_token()
        record = TokenRecord(token_id, name, role, _digest(token), list(sources or []), time.time())
        self.records[token_id] = record
        return token

    def revoke(self, token_id: str) -> bool:
        """Revoke a token by id; False when no such token."""
        record = self.records.get(token_id)
        if record is None:
            return False
        record.revoked = True
        return True

    def verify(self, token: str) -> Principal | None:
        """The principal of a valid, unrevoked token."""
        return _check(self.records, token)


class FileTokenStore(InMemoryTokenStore):
    """Tokens in a JSON file (hashes only); re-read when the file changes, so revocation needs no restart."""

    def __init__(self, path: Path, reload_seconds: float = 1.0) -> None:
        super().__init__()
        self.path = path
        self._reload_seconds = reload_seconds
        self._checked = 0.0
        self._mtime = -1.0
        self._lock = threading.Lock()
        self._reload(force=True)

    def _reload(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._checked < self._reload_seconds:
            return
        with self._lock:
            self._checked = now
            mtime = self.path.stat().st_mtime if self.path.exists() else 0.0
            if mtime == self._mtime:
                return
            self._mtime = mtime
            raw = json.loads(self.path.read_text(encoding="utf-8")) if mtime else {"tokens": []}
            self.records = {r["token_id"]: TokenRecord(**r) for r in raw.get("tokens", [])}

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temp = self.path.with_suffix(".tmp")
        temp.write_text(json.dumps({"tokens": [asdict(r) for r in self.records.values()]}, indent=2))
        temp.chmod(0o600)
        temp.replace(self.path)
        self._reload(force=True)

    def create(self, name: str, role: str, sources: list[str] | None = None) -> str:
        """Create a token, persist its hash, and return it in clear, once."""
        self._reload(force=True)
        token = super().create(name, role, sources)
        self._save()
        return token

    def revoke(self, token_id: str) -> bool:
        """Revoke a token by id and persist the change."""
        self._reload(force=True)
        found = super().revoke(token_id)
        if found:
            self._save()
        return found

    def verify(self, token: str) -> Principal | None:
        """The principal of a valid, unrevoked token."""
        self._reload()
        return _check(self.records, token)
