"""Prometheus metrics of the processor (names fixed by CONTRIBUTING.md).

Cardinality: the `licensee` label takes at most `max_licensees` distinct values per worker, first come
first served; later licensees share the label `_other` (their gauges overwrite each other there).
Label children are cached per licensee: `labels()` costs a lock and a dict lookup, too much per event.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from services.core.agreements import Agreement
from services.processor.domain.rules import RULES
from services.processor.domain.step import Counts

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
    # The latest alerted month (YYYY-MM), which the active-violation gauges describe.
    month: str = ""


class ProcessorMetrics:
    """Every processor metric, in its own registry so several apps can live in one process (tests)."""

    def __init__(self, max_licensees: int, registry: CollectorRegistry | None = None) -> None:
        self.registry = r = registry or CollectorRegistry()
        self.max_licensees = max_licensees
        self._children: dict[str, _Licensee] = {}
        # label value -> the input partition whose calls last set its usage ratios
        self._ratio_partition: dict[str, int] = {}
        # Input partitions lost since they were last assigned: a show of theirs still held for a
        # checkpoint (tally.py) would bring back the ratios `forget_partitions` removed.
        self._lost: set[int] = set()
        self._outcomes: dict[str, Any] = {}
        self._hooks: list[Callable[[], None]] = []
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
            "1 while the licensee's latest alerted month has an alert of the rule",
            ["licensee", "rule"],
            registry=r,
        )
        self.lag = Gauge(
            "tollgate_processor_lag_seconds",
            "While input records are pending: wall clock minus Kafka timestamp of the last record; else 0",
            registry=r,
        )
        self.checkpoint_interval = Gauge(
            "tollgate_processor_checkpoint_interval_seconds",
            "Seconds this worker's checkpoints stay open now: the catch-up interval while it is behind",
            registry=r,
        )
        self.open_usage = Gauge(
            "tollgate_processor_open_usage_partitions",
            "Input partitions this worker knows to hold usage buckets not yet sent as billable deltas",
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
                {},  # ratios appear with the licensee's first counted call here (show), not before
                {rule: self.active.labels(label, rule) for rule in RULES},
            )
        return child

    def outcome(self, kind: str, count: int = 1) -> None:
        """Count input events by outcome."""
        child = self._outcomes.get(kind)
        if child is None:
            child = self._outcomes[kind] = self.events.labels(kind)
        child.inc(count)

    def counted(self, licensee_id: str, records: int, calls: int = 1) -> None:
        """Count `calls` counted calls of a licensee, holding `records` records in all."""
        child = self._child(licensee_id)
        child.calls.inc(calls)
        child.records.inc(records)

    def show(
        self, licensee_id: str, agreement: Agreement | None, usage: Counts, partition: int | None = None
    ) -> None:
        """Set the licensee's latest-window usage ratios after one of its calls (read from input
        `partition`) was counted."""
        if agreement is None or partition in self._lost:
            return
        child = self._child(licensee_id)
        label = self.licensee(licensee_id)
        if partition is not None:
            self._ratio_partition[label] = partition
        if not child.ratio:
            child.ratio.update({name: self.ratio.labels(label, name) for name in LIMITS})
        limits = agreement.limits
        for name, observed, limit in (
            ("calls_per_month", usage.month_calls, limits.calls_per_month),
            ("records_per_month", usage.month_records, limits.records_per_month),
            ("calls_per_minute", usage.minute_calls, limits.calls_per_minute),
        ):
            child.ratio[name].set(observed / limit if limit else 0.0)

    def forget_partitions(self, partitions: list[int]) -> None:
        """Drop the usage ratios set from input partitions this worker no longer owns: their new owner
        shows them now, and a stale value here would outlive it."""
        lost = set(partitions)
        self._lost |= lost
        for label, partition in list(self._ratio_partition.items()):
            if partition not in lost:
                continue
            del self._ratio_partition[label]
            child = self._children.get(label)
            if child is not None and child.ratio:
                for name in LIMITS:
                    self.ratio.remove(label, name)
                child.ratio.clear()

    def regained(self, partitions: list[int]) -> None:
        """Show the usage ratios of calls from `partitions` again: this worker owns them (again)."""
        self._lost.difference_update(partitions)

    def activate(self, licensee_id: str, rule: str, month: str) -> None:
        """Show an alert of `rule` in `month`: 1 for the rules of the licensee's latest alerted month."""
        child = self._child(licensee_id)
        if month < child.month or rule not in child.active:
            return
        if month > child.month:
            child.month = month
            for gauge in child.active.values():
                gauge.set(0)
        child.active[rule].set(1)

    def fired(self, licensee_id: str, rule: str, severity: str, count: int = 1) -> None:
        """Count `count` newly fired alerts."""
        child = self._child(licensee_id)
        violations = child.violations.get(rule)
        if violations is None:
            violations = child.violations[rule] = self.violations.labels(self.licensee(licensee_id), rule)
        violations.inc(count)
        self.alerts.labels(rule, severity).inc(count)

    def before_scrape(self, hook: Callable[[], None]) -> None:
        """Run `hook` before each scrape (it applies the committed checkpoints' increments)."""
        self._hooks.append(hook)

    def prepare(self) -> None:
        """Run the before-scrape hooks."""
        for hook in self._hooks:
            hook()

    def open_usage_from(self, partitions: Callable[[], int]) -> None:
        """Count the partitions with unbilled usage when scraped."""
        self.open_usage.set_function(partitions)

    def lag_from(self, seconds: Callable[[], float]) -> None:
        """Compute the processing lag when scraped (a stored value would freeze at the last record)."""
        self.lag.set_function(seconds)


class LagClock:
    """How far behind its input the worker is: wall clock minus the Kafka timestamp of the last record,
    while records keep coming; 0 once the worker has had nothing to handle for `idle_after` seconds."""

    def __init__(self, now: Callable[[], float], idle_after: float = 2.0) -> None:
        self.now = now
        self.idle_after = idle_after
        self.kafka_timestamp: float | None = None
        self.handled_at: float | None = None

    def handled(self, kafka_timestamp_ms: int) -> None:
        """Note that a record with this Kafka timestamp was just handled."""
        self.kafka_timestamp = kafka_timestamp_ms / 1000
        self.handled_at = self.now()

    def seconds(self) -> float:
        """The lag in seconds, computed when scraped."""
        if self.kafka_timestamp is None or self.handled_at is None:
            return 0.0
        now = self.now()
        if now - self.handled_at > self.idle_after:
            return 0.0
        return max(0.0, now - self.kafka_timestamp)
