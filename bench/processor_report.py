"""The processor's rows in BENCHMARKS.md, from bench.processor_bench's result."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bench.report_rows import TARGETS, Row, _fmt, _ms, dig, median

RAW = "raw confluent-kafka consume + parse + produce"


def processor_rows(result: Mapping[str, Any]) -> list[Row]:
    """Drain, CPU, latency, recovery and RSS of one worker, then the engine comparison."""
    med = dig(result, "median") or {}
    return [*_drain_rows(med), *_latency_rows(med), *_recovery_rows(med), *engine_rows(result.get("engines"))]


def _drain_rows(med: Mapping[str, Any]) -> list[Row]:
    unit, target = TARGETS["processor"]
    raw, keys = med.get("raw_events_per_s"), med.get("dedupe_keys_prefilled")
    note = (
        f"drain of a pre-filled batch: first handled record -> group committed the end offsets; the store "
        f"held {_fmt(keys)} pre-filled dedupe keys (recovered from the changelog); re-sent pre-filled calls "
        f"counted as duplicates: {_fmt(med.get('duplicates_seen'))} of {_fmt(med.get('duplicates_expected'))}"
    )
    stored = med.get("dedupe_keys_at_end") or {}
    if stored:
        note += f"; at the end {_fmt(stored.get('live'))} live ({_fmt(stored.get('on_disk'))} on disk)"
    if isinstance(med.get("ratio"), int | float):
        note += f"; median of each drain's own ratio {med['ratio']:.3f}"
    cpu, load = _fmt(med.get("worker_cpu_share"), 2), _fmt(med.get("load_average_1m"), 1)
    note += f"; worker CPU share {cpu}, load average {load}"
    return [
        Row(f"{RAW} (baseline)", raw, unit),
        Row("processor, one worker", med.get("processor_events_per_s"), unit, RAW, raw, target, note=note),
        Row(
            "processor, per CPU second of the worker",
            med.get("events_per_cpu_s"),
            "events/CPU-s",
            note="events / the worker's CPU seconds over the drain: its rate with a core to itself",
        ),
    ]


def _latency_rows(med: Mapping[str, Any]) -> list[Row]:
    _, p99_target = TARGETS["alert_p99_ms"]
    runs, valid = med.get("latency_runs"), med.get("latency_valid_runs")
    if not runs:
        return []
    fractions = "/".join(f"{f:g}" for f in med.get("latency_load_fractions") or [])
    probes, background = _fmt(med.get("latency_probe_per_s")), _fmt(med.get("latency_background_per_s"))
    load = f"{probes} probes/s + {background} events/s"
    load += f" background (= {fractions} x the median drain rate)" if fractions else " background"
    refused = not_sustained(med.get("not_sustained") or [])
    if not valid:
        note = f"INVALID: no load tried was sustained (lag not flat): {refused or '?'}"
        return [Row("event-to-alert latency p99 (invalid)", None, "ms", note=note)]
    note = f"{load}; lag flat" + (f"; not sustained, not kept: {refused}" if refused else "")
    seen = (
        "probe send time -> alert read by a read_committed consumer (after the worker's transaction commits)"
    )
    return [
        Row(
            "event-to-alert latency p50", _ms(med.get("alert_delivered_p50_s")), "ms", note=f"{seen}; {note}"
        ),
        Row(
            "event-to-alert latency p99",
            _ms(med.get("alert_delivered_p99_s")),
            "ms",
            target=p99_target,
            lower_is_better=True,
            note=f"{seen}; {note}",
        ),
        Row(
            "alert handed to the producer, p99",
            _ms(med.get("alert_latency_p99_s")),
            "ms",
            note="alert record CreateTime - probe send time: before the transaction commits, not yet visible",
        ),
    ]


def _recovery_rows(med: Mapping[str, Any]) -> list[Row]:
    keys = _fmt(med.get("dedupe_keys_prefilled"))
    warm = med.get("warm_startup_s")
    return [
        Row(
            f"recovery from the changelog ({keys} keys)",
            med.get("recovery_s"),
            "s",
            "warm restart",
            warm,
            lower_is_better=True,
            note="state directory deleted; spawn -> first handled record (start-up, agreements and recovery)",
        ),
        Row("warm restart (state directory kept)", warm, "s", note="spawn -> first handled record"),
        Row(
            "worker RSS after a drain",
            med.get("rss_mb"),
            "MB",
            note=f"median of the drains; max {_fmt(med.get('rss_max_mb'))} MB (after a recovery)",
        ),
    ]


def engine_rows(engines: Mapping[str, Any] | None) -> list[Row]:
    """The issue's small job on both engines, each against the raw loop on the same topic."""
    if not engines:
        return []
    raw, jobs = dig(engines, "raw", "events_per_s"), engines.get("jobs") or {}
    quix, faust = jobs.get("quix") or {}, jobs.get("faust") or {}
    what = f"{_fmt(engines.get('events'))} calls, fresh state"
    return [
        Row(f"engine job: {RAW} (baseline)", raw, "events/s", note=what),
        Row(
            f"engine job on quix-streams ({quix.get('guarantee', '?')})",
            quix.get("events_per_s"),
            "events/s",
            RAW,
            raw,
            note=quix.get("error", ""),
        ),
        Row(
            f"engine job on faust-streaming ({faust.get('guarantee', '?')})",
            faust.get("events_per_s"),
            "events/s",
            "quix-streams job",
            quix.get("events_per_s"),
            note=faust.get("error", ""),
        ),
    ]


def not_sustained(attempts: Sequence[Mapping[str, Any]]) -> str:
    """'0.5 x drain rate (~796/s): lag grew +556 records/s..., p99 9,514 ms' per attempt not sustained."""
    parts = []
    for attempt in attempts:
        rates: list[Any] = [attempt.get("background_per_s")]
        first = str(attempt.get("because", "")).split(";")[0]
        share = float(attempt.get("load_fraction") or 0)
        p99 = _fmt(_ms(attempt.get("p99_s")))
        parts.append(f"{share:g} x drain rate (~{_fmt(median(rates))}/s): {first}, p99 {p99} ms")
    return "; ".join(parts)
