"""Kafka's own producer benchmark (`org.apache.kafka.tools.ProducerPerformance`) against the stack's broker.

It is the ceiling for ingest: the broker's write rate with `acks=all`, Tollgate's record size, no keys,
no serialization. `python -m bench.kafka_perf [--bootstrap HOST:PORT] [--records N]` prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from services.core.events import dumps
from services.stack.config import StackConfig

TOOL = "org.apache.kafka.tools.ProducerPerformance"
PARTITIONS = 6
QUIET_LOG4J = (
    "log4j.rootLogger=WARN, stderr\n"
    "log4j.appender.stderr=org.apache.log4j.ConsoleAppender\n"
    "log4j.appender.stderr.Target=System.err\n"
    "log4j.appender.stderr.layout=org.apache.log4j.PatternLayout\n"
    "log4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n\n"
)

# The final summary: "200000 records sent, 36075.036075 records/sec (13.00 MB/sec), 1137.04 ms avg latency,
# 1515.00 ms max latency, 1246 ms 50th, 1453 ms 95th, 1481 ms 99th, 1505 ms 99.9th."
_SUMMARY = re.compile(
    r"(?P<records>\d+) records sent, (?P<rps>[\d.]+) records/sec \((?P<mbps>[\d.]+) MB/sec\), "
    r"(?P<avg>[\d.]+) ms avg latency, (?P<max>[\d.]+) ms max latency"
    r"(?:, (?P<p50>\d+) ms 50th, (?P<p95>\d+) ms 95th, (?P<p99>\d+) ms 99th, (?P<p999>\d+) ms 99\.9th)?"
)


class KafkaPerfError(RuntimeError):
    """ProducerPerformance did not run or printed no summary."""


def parse_summary(output: str) -> dict[str, Any]:
    """Parse the final summary line of ProducerPerformance (the one with percentiles) into numbers.

    The tool also prints a progress line every 5 s in the same shape without percentiles; the summary is
    the last line that has them. Raise KafkaPerfError when there is none.
    """
    found = [m for m in _SUMMARY.finditer(output) if m.group("p50") is not None]
    if not found:
        raise KafkaPerfError(f"no ProducerPerformance summary in output: {output[-500:]!r}")
    m = found[-1]
    return {
        "records": int(m.group("records")),
        "records_per_s": float(m.group("rps")),
        "mb_per_s": float(m.group("mbps")),
        "latency_avg_ms": float(m.group("avg")),
        "latency_max_ms": float(m.group("max")),
        "latency_p50_ms": int(m.group("p50")),
        "latency_p95_ms": int(m.group("p95")),
        "latency_p99_ms": int(m.group("p99")),
        "latency_p999_ms": int(m.group("p999")),
    }


def api_call_record_size() -> int:
    """Median JSON size in bytes of the demo scenario's api-call events (what ingest writes to Kafka)."""
    from services.demo.scenario import demo_calls

    return int(statistics.median(len(dumps(call.to_cloudevent())) for call in demo_calls()))


def command(
    bootstrap: str, topic: str, records: int, record_size: int, libs: Path, log4j: Path, java: str = "java"
) -> list[str]:
    """The ProducerPerformance command line: acks=all, unthrottled, idempotent like ingest's producer."""
    return [
        java,
        "-Xms256m",
        "-Xmx256m",
        "-cp",
        f"{libs}/*",
        f"-Dlog4j.configuration=file:{log4j}",
        TOOL,
        "--topic",
        topic,
        "--num-records",
        str(records),
        "--record-size",
        str(record_size),
        "--throughput",
        "-1",
        "--producer-props",
        f"bootstrap.servers={bootstrap}",
        "acks=all",
        "enable.idempotence=true",
    ]


def run(
    bootstrap: str,
    topic: str | None = None,
    records: int = 500_000,
    record_size: int | None = None,
    libs: Path | None = None,
    timeout: float = 600.0,
) -> dict[str, Any]:
    """Run ProducerPerformance once and return its summary, the command and the settings."""
    size = record_size or api_call_record_size()
    libs = libs or StackConfig.from_env().libs_dir
    if not (libs / "kafka-tools-3.9.1.jar").is_file():
        raise KafkaPerfError(f"kafka-tools jar missing in {libs}: run `tollgate stack install`")
    topic = topic or f"bench.kafka-perf.{uuid.uuid4().hex[:8]}"
    from services.stack.kafka import create_topics

    create_topics(bootstrap, PARTITIONS, {topic: {"partitions": PARTITIONS, "configs": {}}})
    with tempfile.TemporaryDirectory(prefix="tollgate-kperf-") as scratch:
        log4j = Path(scratch) / "log4j.properties"
        log4j.write_text(QUIET_LOG4J)
        argv = command(bootstrap, topic, records, size, libs, log4j)
        started = time.monotonic()
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)  # noqa: S603
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise KafkaPerfError(f"ProducerPerformance failed: {exc}") from exc
    if done.returncode != 0:
        raise KafkaPerfError(f"ProducerPerformance exited {done.returncode}: {done.stderr[-800:]}")
    result = parse_summary(done.stdout)
    result.update(
        {
            "topic": topic,
            "partitions": PARTITIONS,
            "record_size": size,
            "acks": "all",
            "wall_seconds": round(time.monotonic() - started, 1),
            "command": " ".join([argv[0], "-cp", "'<libs>/*'", *argv[6:]]),
        }
    )
    return result


def main(argv: list[str] | None = None) -> int:
    """Command line entry point: one run, JSON on stdout."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", default=os.environ.get("TOLLGATE_KAFKA_BOOTSTRAP", ""))
    parser.add_argument("--topic")
    parser.add_argument("--records", type=int, default=500_000)
    parser.add_argument("--record-size", type=int)
    args = parser.parse_args(argv)
    if not args.bootstrap:
        parser.error("--bootstrap or $TOLLGATE_KAFKA_BOOTSTRAP is required")
    print(json.dumps(run(args.bootstrap, args.topic, args.records, args.record_size), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
