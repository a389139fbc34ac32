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
        *cpu_rows(result.get("cpu") or {}),
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


def cpu_rows(cpu: Mapping[str, Any]) -> list[Row]:
    """CPU by stage per event over sending and drain (bench/cpu_budget.py), and what 2 cores allow."""
    if not cpu:
        return []
    events = cpu.get("events") or 0
    writes = cpu.get("changelog_offsets")
    rows = [Row(f"CPU per event: {stage}", us, "us/event", note=f"{cpu['cpu_s'].get(stage)} CPU-s")
            for stage, us in (cpu.get("us_per_event") or {}).items()]  # fmt: skip
    note = "sum over the services and the stack (not the bench's senders): 2 cores / this"
    rows.append(Row("CPU per event, services", cpu.get("services_us_per_event"), "us/event", note=note))
    rows.append(Row("rate 2 cores allow at that cost", cpu.get("two_cores_allow_events_per_s"), "events/s"))
    if writes is not None and events:
        rows.append(Row("processor state writes per event", round(writes / events, 2), "writes/event",
                        note=f"{writes:,} changelog offsets (transaction markers included)"))  # fmt: skip
    return rows


def workers_rows(result: Mapping[str, Any]) -> list[Row]:
    """The many-worker run against the single-worker run of the same day, and both runs' exactness."""
    single, many = result.get("single") or {}, result.get("many") or {}
    plan = result.get("plan") or {}
    load = (many.get("load_average_after_send") or [None])[0]
    shown_load = "?" if load is None else f"{load:.1f}"
    baseline = "1 ingest process, 1 worker, 1 ledger; same day, same sitting"

    def versus(metric: str, *path: str, unit: str = "events/s", lower: bool = False) -> Row:
        return Row(metric, dig(many, *path), unit, baseline, dig(single, *path), lower_is_better=lower)

    same = result.get("many_equals_single") or {}
    return [
        Row(
            "sustained through all three, 2 ingest / 3 workers / 2 ledgers",
            many.get("sustained_events_per_s"), "events/s", baseline, single.get("sustained_events_per_s"),
            note=f"{plan.get('calls', 0):,} calls, {plan.get('licensees', '?')} licensees, posted at "
            f"{many.get('target_rate')}/s; load average after sending {shown_load}",
        ),
        versus("accepted by ingest", "run", "rates", "accepted_per_s"),
        versus("decided by the processor", "run", "rates", "processed_per_s"),
        versus("done (ledgered, or dropped as duplicate/late)", "run", "rates", "ledgered_per_s"),
        versus("drain after sending stopped", "drain", "drained_after_s", unit="s", lower=True),
        Row("single-worker run exact against the expectation", float(bool(single.get("exact"))), "1 = yes"),
        Row("many-worker run exact against the expectation", float(bool(many.get("exact"))), "1 = yes",
            note=_exact_note(many.get("exactness") or {})),
        Row("many-worker run shows the single-worker run's totals, alert ids and DLQ",
            float(bool(same) and all(same.values())), "1 = yes",
            note=", ".join(f"{k}: {v}" for k, v in same.items())),
    ]


def _exact_note(exact: Mapping[str, Any]) -> str:
    return (f"calls {exact.get('ledger_calls')} of {exact.get('expected_calls')}, "
            f"alerts {exact.get('alerts_seen')} of {exact.get('alerts_expected')}, "
            f"DLQ {exact.get('dlq_seen')} of {exact.get('dlq_expected')}")
