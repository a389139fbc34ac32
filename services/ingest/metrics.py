"""Ingest metrics (names from `services.core.metric_names`), on a registry of their own."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from services.core import metric_names as names

_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_SIZES = (1, 5, 10, 50, 100, 250, 500, 1000, 5000)


class IngestMetrics:
    """Counters and histograms of one ingest app."""

    def __init__(self, registry: CollectorRegistry | None = None, worker: int = 0) -> None:
        # A registry per app, so tests can build many apps in one process without name clashes.
        self.registry = registry or CollectorRegistry()
        # With TOLLGATE_INGEST_WORKERS > 1 the supervisor sums every process's samples (prometheus-client's
        # multiprocess mode); this one keeps them apart, so an operator sees each process serve its share.
        self.worker_requests = Counter(
            names.INGEST_WORKER_REQUESTS,
            "POST /v1/events answers, by ingest process",
            ["worker"],
            registry=self.registry,
        ).labels(str(worker))
        self.events = Counter(
            names.INGEST_EVENTS, "Events received, by outcome", ["outcome"], registry=self.registry
        )
        self.requests = Counter(
            names.INGEST_REQUESTS, "POST /v1/events answers, by status", ["status"], registry=self.registry
        )
        self.seconds = Histogram(
            names.INGEST_REQUEST_SECONDS, "POST /v1/events latency", buckets=_SECONDS, registry=self.registry
        )
        self.batch_size = Histogram(
            names.INGEST_BATCH_SIZE, "Events per accepted request", buckets=_SIZES, registry=self.registry
        )
        self.produce_errors = Counter(
            names.INGEST_PRODUCE_ERRORS, "Requests Kafka did not acknowledge in time", registry=self.registry
        )
        for outcome in ("accepted", "duplicate", "rejected"):
            self.events.labels(outcome)

    def answered(self, status: int, seconds: float) -> None:
        """Count one answer and its latency."""
        self.requests.labels(str(status)).inc()
        self.worker_requests.inc()
        self.seconds.observe(seconds)

    def accepted(self, received: int, published: int, duplicates: int) -> None:
        """Count the events of a 202."""
        self.batch_size.observe(received)
        self.events.labels("accepted").inc(published)
        self.events.labels("duplicate").inc(duplicates)

    def rejected(self, events: int) -> None:
        """Count the events of a refused request."""
        self.events.labels("rejected").inc(events)
