"""How the ledger gets a PostgreSQL connection: a pool in the service, a plain connection in the CLI."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

import psycopg
from psycopg_pool import ConnectionPool

Connect = Callable[[], AbstractContextManager[psycopg.Connection]]


def url_connector(url: str) -> Connect:
    """A new connection per use (commits on success, rolls back on error, then closes)."""
    return lambda: psycopg.connect(url, connect_timeout=5)


def open_pool(url: str, size: int) -> ConnectionPool:
    """A pool that opens lazily, so the service starts (and /readyz says 503) while PostgreSQL is down."""
    return ConnectionPool(
        url,
        min_size=1,
        max_size=size,
        open=False,
        kwargs={"connect_timeout": 5},
        # A request waits at most this long for a connection, so a database outage answers 503 quickly.
        timeout=5.0,
        check=ConnectionPool.check_connection,
        name="tollgate-ledger",
    )


def pool_connector(pool: ConnectionPool) -> Connect:
    """Connections borrowed from `pool`."""
    return pool.connection
