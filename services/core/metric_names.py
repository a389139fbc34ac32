"""The one list of Prometheus metric names Tollgate exports (CONTRIBUTING.md, "Metric names").

Every service builds its metrics from these constants, and `deploy/` (alert rules, Grafana dashboard,
Kubernetes files) may use no other `tollgate_*` name; `tests/unit/test_deploy_config.py` checks both.

Counter constants are the *base* name, without `_total`: prometheus-client appends `_total` to a
Counter's samples (`Counter(INGEST_EVENTS, ...)` exposes `tollgate_ingest_events_total`). Histograms
expose `<name>_bucket`, `<name>_sum` and `<name>_count`. Gauges are exposed as named. Use
`exposed_names()` for the names a scrape shows and `family_of()` to map a sample name back.

Labels named `licensee` are capped at `TOLLGATE_METRICS_MAX_LICENSEES` (default 1000) distinct
values per process; past the cap the value is `LICENSEE_OTHER`.
"""

from __future__ import annotations

from typing import Final, Literal

Kind = Literal["counter", "gauge", "histogram"]

LICENSEE_OTHER: Final = "_other"
DEFAULT_MAX_LICENSEES: Final = 1000

# ingest
INGEST_EVENTS: Final = "tollgate_ingest_events"  # counter {outcome=accepted|duplicate|rejected}
INGEST_REQUESTS: Final = "tollgate_ingest_requests"  # counter {status}
INGEST_REQUEST_SECONDS: Final = "tollgate_ingest_request_seconds"  # histogram
INGEST_BATCH_SIZE: Final = "tollgate_ingest_batch_size"  # histogram
INGEST_PRODUCE_ERRORS: Final = "tollgate_ingest_produce_errors"  # counter
# counter {worker}: POST /v1/events answers per ingest process (TOLLGATE_INGEST_WORKERS; "0" when one)
INGEST_WORKER_REQUESTS: Final = "tollgate_ingest_worker_requests"

# processor
# counter {outcome=counted|duplicate|replayed|late|invalid}
PROCESSOR_EVENTS: Final = "tollgate_processor_events"
USAGE_CALLS: Final = "tollgate_usage_calls"  # counter {licensee}
USAGE_RECORDS: Final = "tollgate_usage_records"  # counter {licensee}
# gauge {licensee, limit=calls_per_month|records_per_month|calls_per_minute}, latest window
USAGE_RATIO: Final = "tollgate_usage_ratio"
VIOLATIONS: Final = "tollgate_violations"  # counter {licensee, rule}
ALERTS_EMITTED: Final = "tollgate_alerts_emitted"  # counter {rule, severity}
# gauge {licensee, rule}: 1 while the latest month has a fired alert of that rule
ACTIVE_VIOLATION: Final = "tollgate_active_violation"
# gauge: wall clock minus the Kafka timestamp of the last record
PROCESSOR_LAG_SECONDS: Final = "tollgate_processor_lag_seconds"
# gauge: input partitions this worker knows to hold usage buckets not yet sent as billable deltas
OPEN_USAGE_PARTITIONS: Final = "tollgate_processor_open_usage_partitions"
# gauge: seconds the worker's checkpoints stay open now (the catch-up interval while it is behind)
CHECKPOINT_INTERVAL_SECONDS: Final = "tollgate_processor_checkpoint_interval_seconds"
EVENT_TIME_LAG_SECONDS: Final = "tollgate_event_time_lag_seconds"  # histogram: Kafka timestamp - event time

# ledger
LEDGER_ENTRIES_WRITTEN: Final = "tollgate_ledger_entries_written"  # counter {kind}
# gauge {partition}: records behind the end offset
LEDGER_CONSUMER_LAG: Final = "tollgate_ledger_consumer_lag"
# gauge {partition}: alert records behind the end offset of the alerts topic
LEDGER_ALERTS_CONSUMER_LAG: Final = "tollgate_ledger_alerts_consumer_lag"
# gauge {partition}: agreement records behind the end offset of the agreements topic
LEDGER_AGREEMENTS_CONSUMER_LAG: Final = "tollgate_ledger_agreements_consumer_lag"
LEDGER_LAST_WRITE_TIMESTAMP: Final = "tollgate_ledger_last_write_timestamp_seconds"  # gauge: unix seconds
LEDGER_INVOICED_MINOR: Final = "tollgate_ledger_invoiced_minor"  # counter {currency}

KINDS: Final[dict[str, Kind]] = {
    INGEST_EVENTS: "counter",
    INGEST_REQUESTS: "counter",
    INGEST_REQUEST_SECONDS: "histogram",
    INGEST_BATCH_SIZE: "histogram",
    INGEST_PRODUCE_ERRORS: "counter",
    INGEST_WORKER_REQUESTS: "counter",
    PROCESSOR_EVENTS: "counter",
    USAGE_CALLS: "counter",
    USAGE_RECORDS: "counter",
    USAGE_RATIO: "gauge",
    VIOLATIONS: "counter",
    ALERTS_EMITTED: "counter",
    ACTIVE_VIOLATION: "gauge",
    PROCESSOR_LAG_SECONDS: "gauge",
    OPEN_USAGE_PARTITIONS: "gauge",
    CHECKPOINT_INTERVAL_SECONDS: "gauge",
    EVENT_TIME_LAG_SECONDS: "histogram",
    LEDGER_ENTRIES_WRITTEN: "counter",
    LEDGER_CONSUMER_LAG: "gauge",
    LEDGER_ALERTS_CONSUMER_LAG: "gauge",
    LEDGER_AGREEMENTS_CONSUMER_LAG: "gauge",
    LEDGER_LAST_WRITE_TIMESTAMP: "gauge",
    LEDGER_INVOICED_MINOR: "counter",
}

# Label names of each metric, in the order services pass them to prometheus-client (`labelnames=`).
# Prometheus adds `job` and `instance` at scrape time.
LABELS: Final[dict[str, tuple[str, ...]]] = {
    INGEST_EVENTS: ("outcome",),
    INGEST_REQUESTS: ("status",),
    INGEST_REQUEST_SECONDS: (),
    INGEST_BATCH_SIZE: (),
    INGEST_PRODUCE_ERRORS: (),
    INGEST_WORKER_REQUESTS: ("worker",),
    PROCESSOR_EVENTS: ("outcome",),
    USAGE_CALLS: ("licensee",),
    USAGE_RECORDS: ("licensee",),
    USAGE_RATIO: ("licensee", "limit"),
    VIOLATIONS: ("licensee", "rule"),
    ALERTS_EMITTED: ("rule", "severity"),
    ACTIVE_VIOLATION: ("licensee", "rule"),
    PROCESSOR_LAG_SECONDS: (),
    OPEN_USAGE_PARTITIONS: (),
    CHECKPOINT_INTERVAL_SECONDS: (),
    EVENT_TIME_LAG_SECONDS: (),
    LEDGER_ENTRIES_WRITTEN: ("kind",),
    LEDGER_CONSUMER_LAG: ("partition",),
    LEDGER_ALERTS_CONSUMER_LAG: ("partition",),
    LEDGER_AGREEMENTS_CONSUMER_LAG: ("partition",),
    LEDGER_LAST_WRITE_TIMESTAMP: (),
    LEDGER_INVOICED_MINOR: ("currency",),
}

# Label values the alert rules and dashboard depend on.
INGEST_OUTCOMES: Final = ("accepted", "duplicate", "rejected")
PROCESSOR_OUTCOMES: Final = ("counted", "duplicate", "replayed", "late", "invalid")
USAGE_LIMITS: Final = ("calls_per_month", "records_per_month", "calls_per_minute")

ALL_METRICS: Final = tuple(KINDS)

_SUFFIXES: Final[dict[Kind, tuple[str, ...]]] = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
}


def exposed_names(base: str) -> tuple[str, ...]:
    """The sample names a scrape shows for one metric (counters gain `_total`, histograms three series)."""
    return tuple(base + suffix for suffix in _SUFFIXES[KINDS[base]])


def all_exposed_names() -> frozenset[str]:
    """Every sample name any Tollgate service may expose."""
    return frozenset(name for base in ALL_METRICS for name in exposed_names(base))


def family_of(sample_name: str) -> str | None:
    """The base metric a sample name belongs to, or None if it is not a Tollgate metric."""
    for base in ALL_METRICS:
        if sample_name in exposed_names(base):
            return base
    return None
