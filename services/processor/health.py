"""The processor's HTTP port: `/metrics`, `/healthz` (liveness) and `/readyz` (readiness) for k8s probes."""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest


class Health:
    """Whether the worker is ready (agreements caught up, app running) and whether it is broken."""

    def __init__(self) -> None:
        self.ready = threading.Event()
        self.failed: Callable[[], str | None] = lambda: None

    def liveness(self) -> tuple[int, bytes]:
        """200 unless the worker refuses to commit (it must be restarted)."""
        reason = self.failed()
        return (503, f"failed: {reason}\n".encode()) if reason else (200, b"ok\n")

    def readiness(self) -> tuple[int, bytes]:
        """200 once the agent handles calls and the worker is alive."""
        code, body = self.liveness()
        if code != 200:
            return code, body
        return (200, b"ready\n") if self.ready.is_set() else (503, b"starting\n")


def serve(
    port: int,
    registry: CollectorRegistry,
    health: Health,
    addr: str = "127.0.0.1",
    before_scrape: Callable[[], None] = lambda: None,
) -> ThreadingHTTPServer:
    """Serve the three endpoints from a daemon thread; return the server (call `shutdown()` to stop)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # http.server dispatches to this name
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                before_scrape()
                self._answer(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                self._answer(*health.liveness())
            elif path == "/readyz":
                self._answer(*health.readiness())
            else:
                self._answer(404, b"not found\n")

        def _answer(self, code: int, body: bytes, content_type: str = "text/plain; charset=utf-8") -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return  # probes every few seconds would flood the log

    server = ThreadingHTTPServer((addr, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="processor-http", daemon=True).start()
    return server
