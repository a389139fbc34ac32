"""Helpers for typed, validated settings read from the environment (prefix `TOLLGATE_`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from services.core.errors import SettingsError
from services.core.security import database_tls

# Secrets that ship in examples and must never reach a running service.
_DEFAULT_SECRETS = {"", "changeme", "change-me", "secret", "password", "postgres", "admin", "tollgate"}
_T = TypeVar("_T")


def require(environ: Mapping[str, str], name: str) -> str:
    """A required variable; SettingsError names it when it is missing or empty."""
    value = environ.get(name, "").strip()
    if not value:
        raise SettingsError(f"{name} is required")
    return value


def _parsed(environ: Mapping[str, str], name: str, convert: Callable[[str], _T], kind: str) -> _T | None:
    """The variable converted by `convert`; None when unset or empty, SettingsError when it is not `kind`."""
    raw = environ.get(name, "").strip()
    if not raw:
        return None
    try:
        if not raw.isascii():
            # int() and float() also read fullwidth and Arabic-Indic digits; settings are ASCII.
            raise ValueError("not ASCII")
        return convert(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be {kind}, got {raw!r}") from exc


def integer(
    environ: Mapping[str, str], name: str, default: int, minimum: int = 0, maximum: int = 2**31
) -> int:
    """An integer variable within bounds."""
    value = _parsed(environ, name, int, "an integer")
    if value is None:
        return default
    if not minimum <= value <= maximum:
        raise SettingsError(f"{name} must be between {minimum} and {maximum}, got {value}")
    return value


def number(environ: Mapping[str, str], name: str, default: float, minimum: float = 0.0) -> float:
    """A float variable (durations, ratios), never money."""
    value = _parsed(environ, name, float, "a number")
    if value is None:
        return default
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, got {value}")
    return value


def database_url(environ: Mapping[str, str], name: str = "TOLLGATE_DATABASE_URL") -> str:
    """A PostgreSQL URL whose password is not a well-known default."""
    url = require(environ, name)
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        raise SettingsError(f"{name} must be a postgresql:// URL")
    if (parts.password or "").lower() in _DEFAULT_SECRETS and parts.hostname not in (None, ""):
        raise SettingsError(f"{name} uses a missing or default password; set a real secret")
    return database_tls(url, environ, name)


def tokens_file(environ: Mapping[str, str], name: str = "TOLLGATE_TOKENS_FILE") -> Path:
    """The hashed-token file; it must exist, so a service never starts open to everyone."""
    path = Path(require(environ, name))
    if not path.is_file():
        hint = "create tokens with `tollgate tokens create`"
        raise SettingsError(f"{name} points to {path}, which does not exist; {hint}")
    return path


def bootstrap_servers(environ: Mapping[str, str], name: str = "TOLLGATE_KAFKA_BOOTSTRAP") -> str:
    """Kafka bootstrap servers, `host:port[,host:port]`."""
    value = require(environ, name)
    for server in value.split(","):
        host, _, port = server.strip().rpartition(":")
        if not host or not (port.isascii() and port.isdigit()):
            raise SettingsError(f"{name} must be host:port[,host:port], got {value!r}")
    return value
