"""Parsing ProducerPerformance's output and building its command line (no Kafka, no Java)."""

from pathlib import Path

import pytest

from bench.kafka_perf import KafkaPerfError, api_call_record_size, command, parse_summary

PROGRESS = (
    "149227 records sent, 29833.5 records/sec (10.75 MB/sec), 1134.3 ms avg latency, 1515.0 ms max latency."
)
SUMMARY = (
    "200000 records sent, 36075.036075 records/sec (13.00 MB/sec), 1137.04 ms avg latency, "
    "1515.00 ms max latency, 1246 ms 50th, 1453 ms 95th, 1481 ms 99th, 1505 ms 99.9th."
)
OUTPUT = f"{PROGRESS}\n{SUMMARY}\n"


def test_parses_the_final_summary_not_the_progress_line() -> None:
    assert parse_summary(OUTPUT) == {
        "records": 200000,
        "records_per_s": 36075.036075,
        "mb_per_s": 13.0,
        "latency_avg_ms": 1137.04,
        "latency_max_ms": 1515.0,
        "latency_p50_ms": 1246,
        "latency_p95_ms": 1453,
        "latency_p99_ms": 1481,
        "latency_p999_ms": 1505,
    }


def test_ignores_log_lines_around_the_summary() -> None:
    noisy = "[2026-11-23 19:24:12,169] WARN something (x)\n" + OUTPUT + "[2026-11-23] INFO closed (y)\n"
    assert parse_summary(noisy)["records_per_s"] == pytest.approx(36075.036075)


@pytest.mark.parametrize(
    "text",
    [
        "",
        PROGRESS,
        "Exception in thread main org.apache.kafka.common.errors.TimeoutException",
    ],
)
def test_no_summary_is_an_error(text: str) -> None:
    with pytest.raises(KafkaPerfError):
        parse_summary(text)


def test_command_is_unthrottled_acks_all_with_the_record_size() -> None:
    argv = command("127.0.0.1:9092", "t", 1000, 378, Path("/libs"), Path("/l4j.properties"))
    assert argv[0] == "java"
    assert "org.apache.kafka.tools.ProducerPerformance" in argv
    joined = " ".join(argv)
    assert "--throughput -1" in joined
    assert "--num-records 1000" in joined
    assert "--record-size 378" in joined
    assert "acks=all" in argv
    assert "bootstrap.servers=127.0.0.1:9092" in argv


def test_record_size_is_that_of_a_demo_api_call_event() -> None:
    assert 300 < api_call_record_size() < 600
