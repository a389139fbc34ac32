"""bench.run's pure parts: medians, ratios, part selection, summaries and the markdown (no stack)."""

from typing import Any

import pytest

from bench.processor_report import processor_rows
from bench.report_rows import Row, median, meets, ratio
from bench.run import (
    call_with,
    dig,
    e2e_rows,
    ingest_rows,
    kafka_rows,
    ledger_rows,
    parse_only,
    render_markdown,
    render_table,
    stage_rows,
)
from services.stack.state import StackInfo

INGEST = {
    "events_per_run": 20000,
    "clients": 4,
    "http": {
        "batch_1000": {"median": 9000, "runs": [8000, 9000, 9500], "ratio_to_raw": 0.75},
        "batch_100": {"median": 4000, "runs": [4000, 4100, 3900], "ratio_to_raw": 0.333},
    },
    "raw_producer_events_per_s": {
        "median": 12000, "runs": [11000, 12000, 13000], "events_per_cpu_s": 20000,
    },
    "workers": {
        "1": {"http": {
            "batch_1000": {"median": 9000, "runs": [8000, 9000, 9500], "ratio_to_raw": 0.75},
            "batch_100": {"median": 4000, "runs": [4000, 4100, 3900], "ratio_to_raw": 0.333},
        }},
        "2": {"http": {"batch_1000": {"median": 14000, "per_process": 7000, "events_per_cpu_s": 16000}},
              "requests_per_worker": {"0": 10.0, "1": 12.0}},
    },
    "validation_1000_events_ms": 6.2,
}  # fmt: skip
KAFKA = {
    "record_size": 378,
    "runs": [{}, {}, {}],
    "median": {"records_per_s": 30000.0, "mb_per_s": 10.8, "latency_p99_ms": 900},
}
PROCESSOR = {
    "drains": [],
    "median": {
        "dedupe_keys_prefilled": 10_000_000,
        "processor_events_per_s": 800.0,
        "raw_events_per_s": 16000.0,
        "ratio": 0.05,
        "events_per_cpu_s": 1600.0,
        "recovery_s": 300.0,
        "warm_startup_s": 6.0,
        "rss_mb": 900.0,
        "rss_max_mb": 1200.0,
        "duplicates_expected": 4000,
        "duplicates_seen": 4000,
        "worker_cpu_share": 0.5,
        "load_average_1m": 4.0,
        "alert_latency_p50_s": 0.02,
        "alert_latency_p99_s": 0.08,
        "alert_delivered_p50_s": 0.04,
        "alert_delivered_p99_s": 0.12,
        "latency_background_per_s": 400.0,
        "latency_probe_per_s": 20.0,
        "latency_load_fractions": [0.5],
        "latency_valid_runs": 1,
        "latency_runs": 1,
        "not_sustained": [],
    },
    "engines": {
        "events": 50000,
        "raw": {"events_per_s": 40000.0},
        "jobs": {
            "quix": {"guarantee": "exactly-once", "events_per_s": 20000.0},
            "faust": {"guarantee": "at_least_once", "events_per_s": 1000.0},
        },
    },
}
E2E = {
    "rate": 170.0,
    "rate_source": "ramp",
    "sustained_events_per_s": 165.2,
    "sustainable": True,
    "ramp": [
        {
            "target_rate": 50,
            "rates": {"accepted_per_s": 50.0, "processed_per_s": 49.0, "ledgered_per_s": 49.0},
            "lag_slope_per_s": {"ingest_to_processor": 0.5, "processor_to_ledger": 0.0},
            "sustainable": True,
        }
    ],
    "run": {
        "window_seconds": 55.0,
        "rates": {"accepted_per_s": 170.0, "processed_per_s": 166.0, "ledgered_per_s": 165.2},
        "lag_grew": {"ingest_to_processor": False, "processor_to_ledger": False},
        "lag_slope_per_s": {"ingest_to_processor": 1.0, "processor_to_ledger": 0.5},
        "lag_growth_limit_per_s": 8.5,
        "drained_after_s": 3.2,
        "statuses": {"202": 20},
        "complete": True,
        "samples": [
            {"t": 5.0, "sent": 1000, "accepted": 1000, "processed": 900, "ledgered": 850, "sending": True}
        ],
    },
}


@pytest.mark.parametrize(
    ("values", "expected"),
    [([3, 1, 2], 2), ([1, 2, 3, 4], 2.5), ([], None), ([None, 5, "x", True], 5)],
)
def test_median(values: list[Any], expected: float | None) -> None:
    assert median(values) == expected


@pytest.mark.parametrize(
    ("value", "baseline", "expected"),
    [(9000, 12000, 0.75), (1, 3, 0.333), (None, 5, None), (5, None, None), (5, 0, None)],
)
def test_ratio(value: float | None, baseline: float | None, expected: float | None) -> None:
    assert ratio(value, baseline) == expected


def test_meets() -> None:
    assert meets(30000, 25000) is True
    assert meets(20000, 25000) is False
    assert meets(120, 250, lower_is_better=True) is True
    assert meets(300, 250, lower_is_better=True) is False
    assert meets(None, 250) is None


def test_dig() -> None:
    assert dig({"a": {"b": 1}}, "a", "b") == 1
    assert dig({"a": {"b": 1}}, "a", "c") is None
    assert dig(None, "a") is None


def test_parse_only_keeps_kafka_first_and_rejects_unknown_parts() -> None:
    assert parse_only("e2e,ingest,kafka") == ["kafka", "ingest", "e2e"]
    assert parse_only(" ledger , ") == ["ledger"]
    with pytest.raises(ValueError, match="bogus"):
        parse_only("ingest,bogus")


def test_ingest_rows_compare_each_process_count_with_the_raw_producer() -> None:
    rows = {(r.metric, r.baseline): r for r in ingest_rows(INGEST, KAFKA)}
    best = rows[("HTTP ingest, 1 process, batches of 1000", "raw kafka-python producer")]
    assert best.ratio == 0.75
    assert best.meets is False
    assert rows[("raw kafka-python producer (baseline)", "ProducerPerformance")].ratio == 0.4
    two = rows[("HTTP ingest, 2 processes, batches of 1000, per process", "raw kafka-python producer")]
    assert (two.value, two.ratio, two.meets) == (7000, 0.583, False)
    cpu = rows[("ingest per CPU second, 2 processes, batches of 1000",
                "raw kafka-python producer per CPU second")]  # fmt: skip
    assert (cpu.ratio, cpu.meets) == (0.8, True)
    assert rows[("validate one 1000-event batch (no I/O)", "")].meets is True
    metrics = [r.metric for r in ingest_rows(INGEST, None)]
    assert metrics.index("HTTP ingest, 1 process, batches of 100") < metrics.index(
        "HTTP ingest, 1 process, batches of 1000"
    )


def test_ingest_rows_read_a_result_from_before_the_process_counts() -> None:
    old = {key: value for key, value in INGEST.items() if key != "workers"}
    metrics = [r.metric for r in ingest_rows(old, None)]
    assert "HTTP ingest, 1 process, batches of 1000" in metrics
    assert not any("2 processes" in metric for metric in metrics)


def test_processor_rows_give_drain_cpu_recovery_rss_and_engines() -> None:
    rows = {r.metric: r for r in processor_rows(PROCESSOR)}
    drain = rows["processor, one worker"]
    assert drain.ratio == 0.05
    assert drain.meets is False
    assert "committed the end offsets" in drain.note
    assert "held 10,000,000 pre-filled dedupe keys" in drain.note
    assert "duplicates: 4,000 of 4,000" in drain.note
    assert rows["processor, per CPU second of the worker"].value == 1600.0
    recovery = rows["recovery from the changelog (10,000,000 keys)"]
    assert (recovery.value, recovery.baseline_value, recovery.ratio) == (300.0, 6.0, 50.0)
    assert rows["worker RSS after a drain"].value == 900.0
    assert rows["engine job on quix-streams (exactly-once)"].ratio == 0.5
    assert rows["engine job on faust-streaming (at_least_once)"].ratio == 0.05


def test_processor_latency_is_what_a_read_committed_consumer_sees() -> None:
    rows = {r.metric: r for r in processor_rows(PROCESSOR)}
    p99 = rows["event-to-alert latency p99"]
    assert p99.value == 120.0
    assert p99.meets is True
    assert "read_committed" in p99.note
    assert "400 events/s background (= 0.5 x the median drain rate)" in p99.note
    assert rows["alert handed to the producer, p99"].value == 80.0


def _processor_with(**median: Any) -> dict[str, Any]:
    """The PROCESSOR result with some median fields changed."""
    return {**PROCESSOR, "median": {**PROCESSOR["median"], **median}}


def _not_sustained(p99_s: float, because: str) -> dict[str, Any]:
    return {"load_fraction": 0.5, "background_per_s": 400.0, "p99_s": p99_s, "because": because}


def test_processor_rows_keep_a_lower_load_and_say_what_was_not_sustained() -> None:
    stepped = _processor_with(
        latency_background_per_s=200.0,
        latency_load_fractions=[0.25],
        latency_runs=2,
        not_sustained=[_not_sustained(9.5, "lag grew +50")],
    )
    p99 = {r.metric: r for r in processor_rows(stepped)}["event-to-alert latency p99"]
    assert p99.value == 120.0
    assert "(= 0.25 x" in p99.note
    assert "0.5 x drain rate (~400/s): lag grew +50, p99 9,500 ms" in p99.note


def test_processor_rows_mark_latency_invalid_when_no_load_was_sustained() -> None:
    queued = _processor_with(
        alert_delivered_p99_s=None,
        latency_load_fractions=[],
        latency_valid_runs=0,
        not_sustained=[_not_sustained(40.0, "lag grew +90")],
    )
    rows = {r.metric: r for r in processor_rows(queued)}
    assert "event-to-alert latency p99" not in rows
    invalid = rows["event-to-alert latency p99 (invalid)"]
    assert invalid.value is None
    assert invalid.meets is None
    assert invalid.note.startswith("INVALID")
    assert "40,000 ms" in invalid.note
    markdown = render_markdown(
        {
            "meta": {
                "date": "d",
                "commit": "c",
                "command": "x",
                "nproc": 2,
                "cpu_model": "m",
                "memory_gb": 1,
            },
            "parts": {"processor": {"status": "ok", "seconds": 1.0, "result": queued}},
        }
    )
    assert "| event-to-alert p99 | < 250 ms | - | - |" in markdown


def test_processor_rows_without_latency_or_engines() -> None:
    drain_only = {"median": {**PROCESSOR["median"], "latency_runs": 0}, "engines": None}
    metrics = [r.metric for r in processor_rows(drain_only)]
    assert metrics[:3] == [
        "raw confluent-kafka consume + parse + produce (baseline)",
        "processor, one worker",
        "processor, per CPU second of the worker",
    ]
    assert not [m for m in metrics if "latency" in m or "engine" in m]


def test_ledger_rows_find_the_figures_by_name() -> None:
    result = {"median": {"ledger_rows_per_s": 20000.0, "copy_rows_per_s": 80000.0}, "runs": []}
    rows = {r.metric: r for r in ledger_rows(result)}
    assert rows["ledger consumer into PostgreSQL"].ratio == 0.25
    assert rows["plain COPY (baseline)"].value == 80000.0


def test_e2e_and_kafka_rows() -> None:
    rows = {r.metric: r for r in e2e_rows(E2E, PROCESSOR)}
    assert rows["sustained through all three"].value == 165.2
    assert rows["sustained through all three"].baseline_value == 800.0
    assert "flat" in rows["sustained through all three"].note
    assert kafka_rows(KAFKA)[0].value == 30000.0


def test_a_reshaped_result_is_reported_not_raised() -> None:
    rows = stage_rows({"ingest": {"status": "ok", "result": {"http": {"batch_x": {}}}}})
    assert rows["ingest"][0].metric == "could not summarise"


def test_render_table_escapes_pipes_and_blanks_missing_values() -> None:
    table = render_table([Row("a|b", None, "x"), Row("c", 1234.5, "events/s", "base", 2469.0, 1000.0)])
    lines = table.splitlines()
    assert lines[2].startswith("| a\\|b | - | x |")
    assert "| c | 1,234 | events/s | base (2,469) | 0.500 | yes (≥ 1,000) |" in lines[3]


def _report(parts: dict[str, Any], quick: bool = False) -> dict[str, Any]:
    meta = {
        "date": "2026-11-23 19:00:00 UTC",
        "commit": "abc123",
        "command": "python -m bench.run",
        "nproc": 2,
        "cpu_model": "AMD EPYC",
        "memory_gb": 23.5,
        "os": "Linux",
        "quick": quick,
        "stack": "throwaway",
        "json": "bench-results/latest.json",
    }
    return {"meta": meta, "parts": parts}


def test_markdown_has_machine_command_targets_tables_and_failures() -> None:
    parts = {
        "kafka": {"status": "ok", "seconds": 30.0, "result": KAFKA},
        "ingest": {"status": "ok", "seconds": 60.0, "result": INGEST},
        "processor": {"status": "ok", "seconds": 90.0, "result": PROCESSOR},
        "ledger": {"status": "failed", "seconds": 0.0, "error": "module missing: bench.ledger_bench"},
        "e2e": {"status": "ok", "seconds": 120.0, "result": E2E},
    }
    text = render_markdown(_report(parts))
    assert "2 CPUs (AMD EPYC), 23.5 GB RAM" in text
    assert "Commit: `abc123`" in text
    assert "Command: `python -m bench.run`" in text
    assert "| ingest (best batch size) | ≥ 25,000 events/s | 14,000 | no |" in text
    assert "| event-to-alert p99 | < 250 ms | 120 | yes |" in text
    assert "| ledger | ≥ 40,000 calls/s worth | - | - |" in text
    assert "**FAILED** after 0 s: `module missing: bench.ledger_bench`" in text
    assert "## End to end" in text
    assert "| 5.0 | yes | 1000 | 1000 | 900 | 850 | 100 | 50 |" in text
    assert "Smoke run" not in text
    assert text.index("## Ingest") < text.index("## Processor") < text.index("## Kafka")


def test_quick_runs_are_marked() -> None:
    assert "Smoke run (`--quick`)" in render_markdown(_report({}, quick=True))


def test_call_with_passes_only_what_a_bench_takes() -> None:
    stack = StackInfo("k:1", "postgresql://o", "postgresql://a", "", "")
    seen: dict[str, Any] = {}

    def ingest_like(bootstrap: str, events: int = 1, runs: int = 3) -> dict[str, Any]:
        seen.update(bootstrap=bootstrap, events=events, runs=runs)
        return {}

    call_with(ingest_like, stack, {"events": 10, "rows": 5})
    assert seen == {"bootstrap": "k:1", "events": 10, "runs": 3}

    def ledger_like(database_url: str, app_database_url: str, **options: Any) -> dict[str, Any]:
        seen.clear()
        seen.update(database_url=database_url, app=app_database_url, **options)
        return {}

    call_with(ledger_like, stack, {"rows": 5})
    assert seen == {"database_url": "postgresql://o", "app": "postgresql://a", "rows": 5}


def test_the_ledger_write_path_is_reported_in_calls_per_second_against_the_target() -> None:
    median = {"ledger_rows_per_s": 10_000, "copy_rows_per_s": 25_000, "unchained_rows_per_s": 12_500,
              "bare_rows_per_s": 20_000, "chain_ratio": 0.8, "chain_ratio_of_runs": 0.81,
              "chain_and_rollup_ratio": 0.5, "calls_per_row": 4.6, "ledger_calls_per_s": 46_000,
              "copy_calls_per_s": 115_000}  # fmt: skip
    result = {"median": median, "rows": 100, "calls": 460, "ledger_rows_per_s": [10_000],
              "unchained_rows_per_s": [12_500], "bare_rows_per_s": [20_000]}  # fmt: skip
    rows = {r.metric: r for r in ledger_rows(result)}
    consumer = rows["ledger consumer into PostgreSQL"]
    assert (consumer.unit, consumer.value, consumer.meets, consumer.ratio) == (
        "calls/s worth",
        46_000,
        True,
        0.4,
    )
    unchained = rows["ledger consumer, chain dropped"].note
    assert "ledger / this = 0.8 (median of the runs' own ratios 0.81)" in unchained


def test_the_ledger_report_compares_with_the_path_before_the_chains_and_without_the_write_ahead() -> None:
    median = {"ledger_rows_per_s": 10_000, "copy_rows_per_s": 25_000, "unchained_rows_per_s": 12_500,
              "bare_rows_per_s": 20_000, "chain_ratio": 0.8, "chain_ratio_of_runs": 0.81,
              "chain_and_rollup_ratio": 0.5, "calls_per_row": 4.6, "ledger_calls_per_s": 46_000,
              "copy_calls_per_s": 115_000, "before_rows_per_s": 9_000, "ratio_to_before": 1.111,
              "ratio_to_before_of_runs": 1.05, "sequential_rows_per_s": 8_000, "write_ahead_gain": 1.25,
              "write_ahead_gain_of_runs": 1.2}  # fmt: skip
    result = {"median": median, "rows": 100, "calls": 460, "ledger_rows_per_s": [10_000],
              "unchained_rows_per_s": [12_500], "bare_rows_per_s": [20_000], "before_rows_per_s": [9_000],
              "sequential_rows_per_s": [8_000]}  # fmt: skip
    rows = {r.metric: r for r in ledger_rows(result)}
    before = rows["ledger consumer before the chains and the write ahead"]
    assert (before.value, before.unit) == (9_000, "rows/s")
    assert "ledger / this = 1.111 (median of the runs' own ratios 1.05)" in before.note
    without = rows["ledger consumer without the write ahead"]
    assert without.value == 8_000
    assert "ledger / this = 1.25 (median of the runs' own ratios 1.2)" in without.note
