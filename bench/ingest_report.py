"""The ingest section's rows: HTTP ingest with 1 and 2 processes against the raw kafka-python producer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bench.report_rows import TARGETS, Row, dig

RAW = "raw kafka-python producer"
# What each process of ingest must reach, as a share of the raw producer in the same run (issue 14).
PER_PROCESS_RATIO = 0.7
VALIDATION_MS = 10.0


def _batches(http: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    return sorted(http.items(), key=lambda kv: int(kv[0].split("_")[-1]))


def _process_rows(count: str, entry: Mapping[str, Any], raw: Any, raw_cpu: Any, clients: Any) -> list[Row]:
    unit, target = TARGETS["ingest"]
    label = f"{count} process" + ("" if count == "1" else "es")
    split = entry.get("requests_per_worker") or {}
    shares = ", ".join(f"worker {w}: {int(n):,}" for w, n in sorted(split.items()))
    rows = []
    for name, http in _batches(entry.get("http") or {}):
        size = name.split("_")[-1]
        note = f"{clients} clients" + (f"; requests {shares}" if shares and count != "1" else "")
        metric = f"HTTP ingest, {label}, batches of {size}"
        rows.append(Row(metric, dig(http, "median"), unit, RAW, raw, target, note=note))
        if count != "1":
            floor = PER_PROCESS_RATIO * raw if raw else None
            rows.append(Row(f"{metric}, per process", dig(http, "per_process"), unit, RAW, raw, floor))
        rows.append(
            Row(
                f"ingest per CPU second, {label}, batches of {size}",
                dig(http, "events_per_cpu_s"),
                "events/CPU-s",
                f"{RAW} per CPU second",
                raw_cpu,
                PER_PROCESS_RATIO * raw_cpu if raw_cpu else None,
                note="the service's processes' user+system CPU over the run",
            )
        )
    return rows


def ingest_rows(result: Mapping[str, Any], kafka: Mapping[str, Any] | None) -> list[Row]:
    """HTTP ingest per process count and batch size against the raw producer (and ProducerPerformance)."""
    unit, _ = TARGETS["ingest"]
    raw = dig(result, "raw_producer_events_per_s", "median")
    raw_cpu = dig(result, "raw_producer_events_per_s", "events_per_cpu_s")
    perf = dig(kafka, "median", "records_per_s") if kafka else None
    rows = [Row(f"{RAW} (baseline)", raw, unit, "ProducerPerformance", perf)]
    if raw_cpu is not None:
        rows.append(Row(f"{RAW}, per CPU second of its process", raw_cpu, "events/CPU-s"))
    processes = result.get("workers") or {"1": {"http": result.get("http") or {}}}
    for count, entry in sorted(processes.items(), key=lambda kv: int(kv[0])):
        rows += _process_rows(count, entry, raw, raw_cpu, result.get("clients", "?"))
    validation = result.get("validation_1000_events_ms")
    if validation is not None:
        metric = "validate one 1000-event batch (no I/O)"
        rows.append(Row(metric, validation, "ms", target=VALIDATION_MS, lower_is_better=True))
    return rows
