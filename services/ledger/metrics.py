"""Ledger metrics (names from `services.core.metric_names`), on a registry of their own."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge

from services.core import metric_names as names

KINDS = ("usage", "invoice_line", "adjustment", "alert", "agreement")


class LedgerMetrics:
    """Counters and gauges of one ledger process; the partition label is bounded by the topic's partitions."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.entries = Counter(
            names.LEDGER_ENTRIES_WRITTEN,
            "Rows appended, by kind (usage = usage_entries rows, alert = alerts rows, agreement = versions)",
            ["kind"],
            registry=self.registry,
        )
        self.lag = Gauge(
            names.LEDGER_CONSUMER_LAG,
            "Billable records behind the end of each partition",
            ["partition"],
            registry=self.registry,
        )
        self.alerts_lag = Gauge(
            names.LEDGER_ALERTS_CONSUMER_LAG,
            "Alert records behind the end of each partition of the alerts topic",
            ["partition"],
            registry=self.registry,
        )
        self.agreements_lag = Gauge(
            names.LEDGER_AGREEMENTS_CONSUMER_LAG,
            "Agreement records behind the end of each partition of the agreements topic",
            ["partition"],
            registry=self.registry,
        )
        self.last_write = Gauge(
            names.LEDGER_LAST_WRITE_TIMESTAMP, "Unix time of the last committed write", registry=self.registry
        )
        self.invoiced = Counter(
            names.LEDGER_INVOICED_MINOR,
            "Sum of positive invoice totals, in minor units",
            ["currency"],
            registry=self.registry,
        )
        for kind in KINDS:
            self.entries.labels(kind)

    def written(self, kind: str, count: int) -> None:
        """Count committed rows of one kind."""
        if count:
            self.entries.labels(kind).inc(count)
        self.last_write.set(time.time())
