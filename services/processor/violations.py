"""`tollgate_active_violation` from the alerts topic itself, on every worker.

Each worker follows the whole alerts topic (read_committed, so only alerts of committed transactions)
and shows, per licensee, the rules alerted in that licensee's latest alerted month. Every worker shows
the same values whatever partitions it owns, so the gauges stay right across rebalances and restarts;
Prometheus rules take `max by (licensee, rule)`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from services.core.events import loads
from services.processor.agreements_view import TopicFollower
from services.processor.metrics import ProcessorMetrics

log = logging.getLogger(__name__)


class ViolationsView:
    """Feeds every committed alert to the metrics' active-violation gauges."""

    def __init__(self, consumer_factory: Callable[[], Any], topic: str, metrics: ProcessorMetrics) -> None:
        self.metrics = metrics
        self.follower = TopicFollower(consumer_factory, topic, self._apply)

    def start(self) -> None:
        """Start following the alerts topic."""
        self.follower.start()

    def stop(self) -> None:
        """Stop following."""
        self.follower.stop()

    def _apply(self, key: bytes | None, value: bytes | None) -> None:
        try:
            data = loads(value or b"")["data"]
            licensee, rule, month = data["licensee_id"], data["rule"], data["window_start"][:7]
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring an unreadable alert: %s", exc)
            return
        self.metrics.activate(licensee, rule, month)
