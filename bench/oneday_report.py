"""The one-day run's rows for BENCHMARKS.md (bench/oneday.py's JSON)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bench.report_rows import Row, dig

TARGET = 5_000.0  # events/s sustained end to end on 2 shared cores (issue 14)


def oneday_rows(result: Mapping[str, Any]) -> list[Row]:
    """Sustained rate against the target rate posted, drain time and the exactness verdicts."""
    run = result.get("run") or {}
    exact = result.get("exactness") or {}
    plan = result.get("plan") or {}
    lag = ", ".join(f"{k}: {'grew' if v else 'flat'}" for k, v in (run.get("lag_grew") or {}).items())
    load = result.get("load_average_after_send")
    shown_load = f"{load[0]:.1f}" if load else "?"
    return [
        Row(
            "sustained through all three",
            result.get("sustained_events_per_s"),
            "events/s",
            "rate posted",
            result.get("target_rate"),
            TARGET,
            note=f"{plan.get('calls', 0):,} calls, {plan.get('licensees', '?')} licensees, "
            f"{result.get('ingest_workers')} ingest processes; lag {lag or '?'}; "
            f"load average after sending {shown_load}",
        ),
        Row("accepted by ingest", dig(run, "rates", "accepted_per_s"), "events/s"),
        Row("decided by the processor", dig(run, "rates", "processed_per_s"), "events/s"),
        Row("done (ledgered, or dropped as duplicate/late)", dig(run, "rates", "ledgered_per_s"), "events/s"),
        Row("drain after sending stopped", dig(result, "drain", "drained_after_s"), "s"),
        Row(
            "ledger totals per licensee equal the expectation",
            float(bool(exact.get("totals_exact"))),
            "1 = yes",
            note=f"calls {exact.get('ledger_calls')} of {exact.get('expected_calls')}, records "
            f"{exact.get('ledger_records')} of {exact.get('expected_records')}; "
            f"differing: {exact.get('licensees_differing') or 'none'}",
        ),
        Row(
            "alert set equals the expectation",
            float(bool(exact.get("alerts_exact"))),
            "1 = yes",
            note=f"{exact.get('alerts_seen')} seen of {exact.get('alerts_expected')} expected, "
            f"{exact.get('alerts_missing')} missing, {exact.get('alerts_unexpected')} unexpected; "
            f"{exact.get('alert_rules')}",
        ),
        Row(
            "DLQ holds the too-late calls",
            float(bool(exact.get("dlq_exact"))),
            "1 = yes",
            note=f"{exact.get('dlq_seen')} of {exact.get('dlq_expected')}",
        ),
    ]
