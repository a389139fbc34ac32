"""How long an HTTP service waits for a client, and how many it serves at once (`TOLLGATE_<SERVICE>_*`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from services.core.settings import integer, number


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """Read timeouts and the connection limit of one HTTP service."""

    # From connection (or the end of the previous answer) until the request's headers are complete.
    header_timeout_seconds: float = 10.0
    # From the end of the headers until the last body byte; past it the answer is 408.
    body_timeout_seconds: float = 30.0
    # Open connections plus requests in flight; past it a new request gets 503 (uvicorn's limit_concurrency).
    max_connections: int = 1000
    # An idle keep-alive connection is closed after this long.
    keep_alive_seconds: int = 5

    @classmethod
    def from_env(cls, environ: Mapping[str, str], service: str) -> HttpLimits:
        """Read `TOLLGATE_<SERVICE>_HEADER_TIMEOUT_SECONDS` and the others; SettingsError names a bad one."""
        prefix = f"TOLLGATE_{service.upper()}_"
        return cls(
            header_timeout_seconds=number(environ, prefix + "HEADER_TIMEOUT_SECONDS", 10.0, 0.1),
            body_timeout_seconds=number(environ, prefix + "BODY_TIMEOUT_SECONDS", 30.0, 0.1),
            max_connections=integer(environ, prefix + "MAX_CONNECTIONS", 1000, 1, 1_000_000),
            keep_alive_seconds=integer(environ, prefix + "KEEP_ALIVE_SECONDS", 5, 1, 3600),
        )
