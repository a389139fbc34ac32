"""Free TCP ports on 127.0.0.1, so two stacks never collide."""

from __future__ import annotations

import contextlib
import socket

HOST = "127.0.0.1"


def free_ports(count: int, host: str = HOST) -> list[int]:
    """Return `count` distinct ports that were free on `host` a moment ago."""
    with contextlib.ExitStack() as stack:
        sockets = [
            stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(count)
        ]
        for sock in sockets:
            sock.bind((host, 0))
        return [sock.getsockname()[1] for sock in sockets]


def free_port(host: str = HOST) -> int:
    """Return one port that was free on `host` a moment ago."""
    return free_ports(1, host)[0]


def port_is_open(port: int, host: str = HOST, timeout: float = 0.5) -> bool:
    """Return whether something accepts TCP connections on `host:port`."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False
