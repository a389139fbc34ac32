"""Prometheus metrics of the processor (names fixed by CONTRIBUTING.md).

Cardinality: the `licensee` label takes at most `max_licensees` distinct values per worker, first come
first served; later licensees share the label `_other` (their gauges overwrite each other there).
Label children are cached per licensee: `labels()` costs a lock and a dict lookup, too much per event.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from services.core.agreements import Agreement
from services.processor.domain import windows
from services.processor.domain.rules import RULES
from services.processor.domain.state import LicenseeState

OTHER = "_other"
LIMITS = ("calls_per_month", "records_per_month", "calls_per_minute")
_LAG_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 5, 30, 60, 300, 3600, 86400, 7 * 86400, 30 * 86400)


@dataclass(slots=True)
class _Licensee:
    """The cached label children of one licensee label value."""

    calls: Any
    records: Any
    ratio: dict[str, Any]
    active: dict[str, Any]
    violations: dict[str, Any] = field(default_factory=dict)


class ProcessorMetrics:
    """Every processor metric, in its own registry so several apps can live in one process (tests)."""

    def __init__(self, max_licensees: int, registry: CollectorRegistry | None = None) -> None:
        self.registry = r = registry or CollectorRegistry()
        self.max_licensees = max_licensees
        self._children: dict[str, _Licensee] = {}
        self._outcomes: dict[str, Any] = {}
        self.events = Counter(
            "tollgate_processor_events_total", "Input events by outcome", ["outcome"], registry=r
        )
        self.calls = Counter("tollgate_usage_calls_total", "Counted calls", ["licensee"], registry=r)
        self.records = Counter("tollgate_usage_records_total", "Counted records", ["licensee"], registry=r)
        self.ratio = Gauge(
            "tollgate_usage_ratio", "Usage over limit, latest window", ["licensee", "limit"], registry=r
        )
        self.violations = Counter(
            "tollgate_violations_total", "Alerts fired", ["licensee", "rule"], registry=r
        )
        self.alerts = Counter(
            "tollgate_alerts_emitted_total", "Alerts emitted", ["rule", "severity"], registry=r
        )
        self.active = Gauge(
            "tollgate_active_violation",
            "1 while the latest month has a fired alert of the rule",
            ["licensee", "rule"],
            registry=r,
        )
        self.lag = Gauge(
            "tollgate_processor_lag_seconds",
            "While input records are pending: wall clock minus Kafka timestamp of the last record; else 0",
            registry=r,
        )
        self.event_lag = Histogram(
            "tollgate_event_time_lag_seconds",
            "Kafka timestamp minus event time",
            buckets=_LAG_BUCKETS,
            registry=r,
        )

    def licensee(self, licensee_id: str) -> str:
        """The label value for a licensee, capped."""
        if licensee_id in self._children or len(self._children) < self.max_licensees:
            return licensee_id
        return OTHER

    def _child(self, licensee_id: str) -> _Licensee:
        label = self.licensee(licensee_id)
        child = self._children.get(label)
        if child is None:
            child = self._children[label] = _Licensee(
                self.calls.labels(label),
                self.records.labels(label),
                {name: self.ratio.labels(label, name) for name in LIMITS},
                {rule: self.active.labels(label, rule) for rule in RULES},
            )
        return child

    def outcome(self, kind: str, count: int = 1) -> None:
        """Count input events by outcome."""
        child = self._outcomes.get(kind)
        if child is None:
            child = self._outcomes[kind] = self.events.labels(kind)
        child.inc(count)

    def counted(self, licensee_id: str, records: int) -> None:
        """Count one counted call of a licensee."""
        child = self._child(licensee_id)
        child.calls.inc()
        child.records.inc(records)

    def show(self, state: LicenseeState, agreement: Agreement | None) -> None:
        """Set the licensee's latest-window gauges from its state."""
        if state.high_watermark is None:
            return
        child = self._child(state.licensee_id)
        latest = windows.from_epoch(state.high_watermark)
        if agreement is not None:
            month = state.months.get(windows.month_key(latest))
            limits = agreement.limits
            minute = state.minutes.get(windows.minute_index(latest), 0)
            for name, observed, limit in (
                ("calls_per_month", month.calls if month else 0, limits.calls_per_month),
                ("records_per_month", month.records if month else 0, limits.records_per_month),
                ("calls_per_minute", minute, limits.calls_per_minute),
            ):
                child.ratio[name].set(observed / limit if limit else 0.0)
        start = windows.month_window(latest)[0].timestamp()
        active = {f.rule for f in state.fired.values() if f.window_start >= start}
        for rule, gauge in child.active.items():
            gauge.set(1 if rule in active else 0)

    def fired(self, licensee_id: str, rule: str, severity: str) -> None:
        """Count one newly fired alert."""
        child = self._child(licensee_id)
        violations = child.violations.get(rule)
        if violations is None:
            violations = child.violations[rule] = self.violations.labels(self.licensee(licensee_id), rule)
        violations.inc()
        self.alerts.labels(rule, severity).inc()

    def lag_from(self, tracker: LagTracker) -> None:
        """Compute the processing lag when scraped (a stored value would freeze at the last record)."""
        self.lag.set_function(tracker.seconds)


class LagTracker:
    """How far behind the input the worker is, computed on demand."""

    def __init__(self, pending: Callable[[dict[int, int]], bool] | None = None) -> None:
        self.pending = pending
        self.last_timestamp: float | None = None
        self.next_offsets: dict[int, int] = {}

    def processed(self, partition: int, offset: int, timestamp: float | None) -> None:
        """Note the last record handled on a partition."""
        self.next_offsets[partition] = offset + 1
        if timestamp:
            self.last_timestamp = timestamp

    def seconds(self) -> float:
        """0 when nothing is pending, else wall clock minus the Kafka timestamp of the last record."""
        if self.last_timestamp is None:
            return 0.0
        try:
            behind = self.pending is None or self.pending(dict(self.next_offsets))
        except Exception:  # a scrape must not fail because the consumer is rebalancing
            behind = True
        return max(0.0, time.time() - self.last_timestamp) if behind else 0.0
