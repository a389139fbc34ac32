"""BENCHMARKS.md's one-screen summary (bench/summary.py) and the one-day rows, from report JSON alone."""

from typing import Any

from bench.oneday_report import oneday_rows
from bench.report_rows import Row
from bench.run import render_markdown
from bench.summary import headline, render_summary

ONEDAY: dict[str, Any] = {
    "plan": {"calls": 100_000, "licensees": 50},
    "target_rate": 5000.0,
    "ingest_workers": 2,
    "sustained_events_per_s": 1250.0,
    "load_average_after_send": [6.5, 5.0, 4.0],
    "run": {
        "rates": {"accepted_per_s": 4900.0, "processed_per_s": 1300.0, "ledgered_per_s": 1250.0},
        "lag_grew": {"ingest_to_processor": True, "processor_to_ledger": False},
    },
    "drain": {"drained_after_s": 55.0},
    "exactness": {
        "totals_exact": True,
        "alerts_exact": True,
        "dlq_exact": False,
        "dlq_seen": 19,
        "dlq_expected": 20,
    },
}


def test_the_headline_is_the_best_row_of_its_prefix_and_unit() -> None:
    rows = [
        Row("HTTP ingest, 1 process", 4000.0, "events/s", "raw producer", 8000.0),
        Row("HTTP ingest, 2 processes", 7000.0, "events/s", "raw producer", 8000.0),
        Row("HTTP ingest, per process", 9000.0, "events/CPU-s"),
        Row("raw kafka-python producer", 8000.0, "events/s"),
    ]
    best = headline(rows, "HTTP ingest")
    assert best is not None and best.metric == "HTTP ingest, 2 processes"
    assert headline(rows, "ledger") is None


def test_the_summary_shows_each_stage_rate_and_ratio_and_names_a_failed_one() -> None:
    rows = {
        "ingest": [Row("HTTP ingest, 2 processes", 7000.0, "events/s", "raw producer", 8000.0, 25_000.0)],
        "oneday": oneday_rows(ONEDAY),
    }
    lines = render_summary(rows, {"ingest": "ok", "processor": "failed", "oneday": "ok"})
    text = "\n".join(lines)
    assert lines[0] == "## Summary (one run)"
    ingest = "| ingest, HTTP -> Kafka (best batch size and process count) | 7,000 | events/s |"
    assert f"{ingest} raw producer (8,000) | 0.875 | no (≥ 25,000) |" in text
    assert "| processor, one worker (drain) | failed |" in text
    assert (
        "| one day, end to end, sustained | 1,250 | events/s | rate posted (5,000) | 0.250 | no (≥ 5,000) |"
        in text
    )
    assert "ledger" not in text  # a stage that did not run is left out


def test_oneday_rows_carry_the_drain_and_each_exactness_verdict() -> None:
    rows = {r.metric: r for r in oneday_rows(ONEDAY)}
    assert rows["drain after sending stopped"].value == 55.0
    assert rows["ledger totals per licensee equal the expectation"].value == 1.0
    assert rows["DLQ holds the too-late calls"].value == 0.0
    assert "19 of 20" in rows["DLQ holds the too-late calls"].note
    assert "ingest_to_processor: grew" in rows["sustained through all three"].note
    assert "load average after sending 6.5" in rows["sustained through all three"].note


def test_the_markdown_leads_with_the_summary_before_the_stage_sections() -> None:
    meta = {"date": "d", "commit": "c", "command": "x", "nproc": 2, "cpu_model": "m", "memory_gb": 1}
    parts = {"oneday": {"status": "ok", "seconds": 600.0, "result": ONEDAY}}
    markdown = render_markdown({"meta": meta, "parts": parts})
    assert (
        markdown.index("## Summary (one run)") < markdown.index("## Targets") < markdown.index("## One day")
    )
