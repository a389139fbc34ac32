"""How long the next checkpoint stays open: short while the worker keeps up, longer while it catches up.

A checkpoint's commit has a fixed cost (the transaction's round trips, the TTL sweep's start, one write
of each touched window key), and the alerts of a checkpoint become visible only when it commits. While
the worker keeps up, the short interval bounds event-to-alert latency. While it works through a backlog
(a restart, an outage upstream, a burst), every alert is already late by the backlog, so a longer
interval costs little latency and spreads the fixed cost over more records. Delivery is unchanged: each
checkpoint, short or long, commits its outputs, state and input offsets in one Kafka transaction.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Pace:
    """The checkpoint intervals (seconds) and the lag beyond which the worker counts as catching up."""

    interval: float
    catch_up_interval: float
    behind_after: float

    def next_interval(self, lag_seconds: float) -> float:
        """The interval of the next checkpoint, given the worker's lag behind its input now."""
        return self.catch_up_interval if lag_seconds > self.behind_after else self.interval
