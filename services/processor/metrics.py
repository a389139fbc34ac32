"""Prometheus metrics of the processor (names fixed by CONTRIBUTING.md).

Cardinality: the `licensee` label takes at most `max_licensees` distinct values per worker, first come
first served; later licensees share the label `_other` (their gauges overwrite each other there).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from services.core.agreements import Agreement
from services.processor.domain import windows
from services.processor.domain.rules import RULES
from services.processor.domain.state import LicenseeState

OTHER = "_other"
_LAG_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 5, 30, 60, 300, 3600, 86400, 7 * 86400, 30 * 86400)


class ProcessorMetrics:
    """Every processor metric, in its own registry so several apps can live in one process (tests)."""

    def __init__(self, max_licensees: int, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.max_licensees = max_licensees
        self._labels: set[str] = set()
        r = self.registry
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
            "Wall clock minus Kafka timestamp of the last record",
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
        if licensee_id in self._labels:
            return licensee_id
        if len(self._labels) < self.max_licensees:
            self._labels.add(licensee_id)
            return licensee_id
        return OTHER

    def counted(self, state: LicenseeState, records: int, agreement: Agreement | None) -> None:
        """Update usage counters and the latest-window gauges after a counted call."""
        label = self.licensee(state.licensee_id)
        self.calls.labels(label).inc()
        self.records.labels(label).inc(records)
        if state.high_watermark is None:
            return
        latest = windows.from_epoch(state.high_watermark)
        if agreement is not None:
            month = state.month(windows.month_key(latest))
            minute = state.minutes.get(windows.minute_index(latest), 0)
            limits = agreement.limits
            for name, observed, limit in (
                ("calls_per_month", month.calls, limits.calls_per_month),
                ("records_per_month", month.records, limits.records_per_month),
                ("calls_per_minute", minute, limits.calls_per_minute),
            ):
                self.ratio.labels(label, name).set(observed / limit if limit else 0.0)
        start, _ = windows.month_window(latest)
        active = {f.rule for f in state.fired.values() if f.window_start >= start.timestamp()}
        for rule in RULES:
            self.active.labels(label, rule).set(1 if rule in active else 0)

    def fired(self, licensee_id: str, rule: str, severity: str) -> None:
        """Count one newly fired alert."""
        self.violations.labels(self.licensee(licensee_id), rule).inc()
        self.alerts.labels(rule, severity).inc()
