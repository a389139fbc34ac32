"""The one-day run (issue 14 item 1): a day of 200 Zipf-skewed licensees over HTTP through ingest, the
processor and the ledger, every part on this machine; the sustained rate, the drain and exactness.

    python -m bench.oneday [--calls 2100000] [--licensees 200] [--rate 5000] [--ingest-workers 2]

The day (bench/oneday_traffic.py) is generated and its expectation computed by the pure domain before
the services start; then `bench.e2e_bench.drive` posts the pre-built bodies (500 events each, keep-alive
clients in threads, paced open loop at `--rate`) to `tollgate serve ingest` with
TOLLGATE_INGEST_WORKERS processes, the processor flushing usage every 2 s. Every 5 s it samples:
accepted (ingest's 202s), processed (the processor's input events of any outcome) and done (the
ledger's calls of this run plus the processor's non-counted outcomes: a duplicate or late call is done
once the processor decided it). Rates and lag slopes are `bench.e2e_bench.analyse`'s. After sending it
waits until every accepted event was decided, no usage bucket is open
(`tollgate_processor_open_usage_partitions` 0) and the ledger stopped growing: that is the drain. Then it
checks exactness: per licensee calls and records in the ledger's usage rows of this run's billable
topic, the alert ids read read_committed from the alerts topic, and the DLQ's count, each against the
expectation. Uses the stack in $TOLLGATE_*; prints JSON.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from bench import e2e_bench
from bench.cpu_budget import CpuMeter
from bench.e2e_bench import PROCESSED_METRIC, Sample, Services, Tally
from bench.oneday_traffic import Day, DayPlan, make_day
from services.demo.observe import wait_members_sharing
from services.stack.state import StackInfo

log = logging.getLogger("bench.oneday")
OPEN_USAGE = "tollgate_processor_open_usage_partitions"


def counters(services: Services) -> tuple[int, int, int]:
    """(processed of any outcome, done, open usage partitions) now."""
    handled = services.processor_sum(PROCESSED_METRIC)
    counted = services.processor_sum(PROCESSED_METRIC, outcome="counted")
    open_usage = services.processor_sum(OPEN_USAGE)
    return handled, services.ledgered() + handled - counted, open_usage


def send_and_sample(services: Services, day: Day, rate: float, senders: int, every: float) -> dict[str, Any]:
    """Post the day at `rate`, sampling every `every` s while sending; the samples and the analysis."""
    tally, samples, sending = Tally(), [], threading.Event()
    started = time.monotonic()

    def take() -> Sample:
        handled, done, _ = counters(services)
        with tally.lock:
            sent, accepted = tally.sent, tally.accepted
        return Sample(round(time.monotonic() - started, 2), sent, accepted, handled, done, sending.is_set())

    def sampler() -> None:
        while sending.is_set() and not stopped.wait(every):
            samples.append(take())

    stopped = threading.Event()
    sending.set()
    thread = threading.Thread(target=sampler, name="oneday-sampler", daemon=True)
    thread.start()
    seconds = e2e_bench.drive(services.ingest.url, services.token, day.bodies, rate, senders, tally)
    samples.append(take())  # the end of the sending window
    sending.clear()
    stopped.set()
    thread.join()
    result = {
        "send_seconds": round(seconds, 1),
        "sent": tally.sent,
        "accepted": tally.accepted,
        "ingest_duplicates": tally.duplicates,
        "statuses": dict(tally.statuses),
        "max_sender_behind_s": round(tally.max_behind_s, 1),
        "samples": [asdict(s) for s in samples],
    }
    result.update(e2e_bench.analyse(samples, rate))
    services.accepted_total = tally.accepted
    return result


def drain(services: Services, timeout: float, quiet: float = 6.0) -> dict[str, Any]:
    """Wait until everything accepted is decided, no usage is open and the ledger held still `quiet` s."""
    started = time.monotonic()
    last, still_since = -1, time.monotonic()
    while time.monotonic() - started < timeout:
        handled, done, open_usage = counters(services)
        if done != last:
            last, still_since = done, time.monotonic()
        settled = handled >= services.accepted_total and open_usage == 0
        if settled and time.monotonic() - still_since >= quiet:
            return {"drained_after_s": round(still_since - started, 1), "handled": handled, "done": done}
        time.sleep(1.0)
    return {"drained_after_s": None, "handled": handled, "done": done, "open_usage": open_usage}


def ledger_usage(services: Services) -> dict[str, tuple[int, int]]:
    """Per licensee (calls, records) of the ledger's usage rows read from this run's billable topic."""
    import psycopg

    query = (
        "SELECT licensee_id, sum(calls), sum(records) FROM usage_entries "
        "WHERE kafka_topic = %s GROUP BY licensee_id"
    )
    with psycopg.connect(services.database_url) as conn:
        rows = conn.execute(query, (services.billable_topic,)).fetchall()
    return {licensee: (int(calls), int(records)) for licensee, calls, records in rows}


def committed_values(bootstrap: str, topic: str, timeout: float = 120.0) -> list[dict[str, Any]]:
    """Every committed record of `topic` (read_committed, from the beginning to the end), as JSON."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-oneday-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
        }
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        at_end: set[int] = set()
        values: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while len(at_end) < len(partitions) and time.monotonic() < deadline:
            for message in consumer.consume(10_000, timeout=0.5):
                error = message.error()
                if error is None:
                    values.append(orjson.loads(message.value()))
                elif error.code() == KafkaError._PARTITION_EOF:
                    at_end.add(message.partition())
        return values
    finally:
        consumer.close()


def exactness(stack: StackInfo, services: Services, day: Day) -> tuple[dict[str, Any], Observed]:
    """The ledger's totals, the alert set and the DLQ against the expectation; with what was observed."""
    ledger = ledger_usage(services)
    wrong = sorted(lic for lic in set(ledger) | set(day.usage) if ledger.get(lic) != day.usage.get(lic))
    alerts = committed_values(stack.kafka_bootstrap, services.topics["alerts"])
    seen = frozenset((a.get("data") or {}).get("alert_id") or a.get("id") for a in alerts)
    dlq = committed_values(stack.kafka_bootstrap, services.topics["dlq"])
    verdict = {
        "licensees_expected": len(day.usage),
        "licensees_differing": wrong[:20],
        "ledger_calls": sum(c for c, _ in ledger.values()),
        "expected_calls": sum(c for c, _ in day.usage.values()),
        "ledger_records": sum(r for _, r in ledger.values()),
        "expected_records": sum(r for _, r in day.usage.values()),
        "totals_exact": not wrong,
        "alerts_expected": len(day.alert_ids),
        "alerts_seen": len(seen),
        "alerts_missing": len(day.alert_ids - seen),
        "alerts_unexpected": len(seen - day.alert_ids),
        "alerts_exact": seen == day.alert_ids,
        "alert_rules": day.alert_rules,
        "dlq_expected": day.too_late,
        "dlq_seen": len(dlq),
        "dlq_exact": len(dlq) == day.too_late,
    }
    return verdict, Observed(ledger, seen, len(dlq))


@dataclass(frozen=True)
class Observed:
    """What one run's ledger, alerts topic and DLQ held: to compare runs of one day with each other."""

    usage: dict[str, tuple[int, int]]
    alert_ids: frozenset[str]
    dlq: int


def generate(calls: int, licensees: int) -> tuple[Day, dict[str, Any]]:
    """The day of `calls` over `licensees` with its expectation, and the facts of it for the result."""
    plan = DayPlan(calls=calls, licensees=licensees)
    started = time.monotonic()
    day = make_day(plan, uuid.uuid4().hex[:10])
    return day, {
        "plan": asdict(plan),
        "day": day.day_start.strftime("%Y-%m-%d"),
        "generate_seconds": round(time.monotonic() - started, 1),
        "events_sent": day.sent,
        "duplicates_sent": day.duplicates,
        "late_counted": day.late,
    }


def run_day(
    stack: StackInfo,
    day: Day,
    rate: float,
    *,
    ingest_workers: int = 2,
    processors: int = 1,
    ledgers: int = 1,
    senders: int = 6,
    sample_every: float = 5.0,
    drain_timeout: float = 3_600.0,
) -> tuple[dict[str, Any], Observed]:
    """Run `day` through fresh services of this shape (own topics and groups); rates, drain, exactness.

    With several processor workers the clock starts once their group is stable and each holds input
    partitions, so the figures are of the group at work, not of it forming."""
    result: dict[str, Any] = {
        "target_rate": rate,
        "ingest_workers": ingest_workers,
        "processor_workers": processors,
        "ledger_instances": ledgers,
        "senders": senders,
        "load_average_before": os.getloadavg(),
    }
    env = {"TOLLGATE_INGEST_WORKERS": str(ingest_workers), "TOLLGATE_PROCESSOR_USAGE_FLUSH_SECONDS": "2"}
    with tempfile.TemporaryDirectory(prefix="tollgate-oneday-") as workdir:
        shape = {"processors": processors, "ledgers": ledgers}
        licensees, agreements = day.plan.licensees, day.agreements
        running = e2e_bench.running_services(stack, Path(workdir), licensees, agreements, env, **shape)
        with running as services:
            bootstrap, input_topic = stack.kafka_bootstrap, services.topics["input"]
            settled = wait_members_sharing(bootstrap, services.app_id, input_topic, processors, 180.0)
            result["group_settled_s"] = round(settled, 1)
            meter = CpuMeter(str(stack.stack_dir or ""))  # no stack dir: any broker or database counts
            meter.start()
            result["run"] = send_and_sample(services, day, rate, senders, sample_every)
            result["load_average_after_send"] = os.getloadavg()
            result["drain"] = drain(services, drain_timeout)
            result["cpu"] = meter.stop(day.sent)
            result["cpu"]["changelog_offsets"] = changelog_offsets(bootstrap, services.app_id)
            result["exactness"], observed = exactness(stack, services, day)
    run_ = result["run"]
    result["sustained_events_per_s"] = run_["through_all_three_per_s"]
    result["lag_flat"] = not any(run_["lag_grew"].values())
    result["exact"] = all(result["exactness"][k] for k in ("totals_exact", "alerts_exact", "dlq_exact"))
    return result, observed


def changelog_offsets(bootstrap: str, app_id: str) -> int:
    """Offsets the run's processor state changelogs hold: a state write each, plus one transaction
    marker per partition a checkpoint wrote to."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-count-{uuid.uuid4()}"})
    try:
        topics = consumer.list_topics(timeout=10).topics
        total = 0
        for name, meta in topics.items():
            if name.startswith(f"changelog__{app_id}--"):
                for partition in meta.partitions:
                    low, high = consumer.get_watermark_offsets(TopicPartition(name, partition), timeout=10)
                    total += high - low
        return total
    finally:
        consumer.close()


def run(
    stack: StackInfo,
    calls: int = 2_100_000,
    licensees: int = 200,
    rate: float = 5_000.0,
    *,
    ingest_workers: int = 2,
    senders: int = 6,
    sample_every: float = 5.0,
    drain_timeout: float = 3_600.0,
) -> dict[str, Any]:
    """Generate the day, run it through the three services, and return rates, drain and exactness."""
    day, result = generate(calls, licensees)
    measured, _ = run_day(
        stack, day, rate, ingest_workers=ingest_workers, senders=senders, sample_every=sample_every,
        drain_timeout=drain_timeout,
    )
    return {**result, **measured}


def day_parser(description: str | None) -> argparse.ArgumentParser:
    """A command line taking the day's size (--calls, --licensees), --rate and --senders."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=2_100_000)
    parser.add_argument("--licensees", type=int, default=200)
    parser.add_argument("--rate", type=float, default=5_000.0, help="target events/s posted")
    parser.add_argument("--senders", type=int, default=6)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Command line entry point: JSON on stdout; 1 when the run was not exact."""
    parser = day_parser(__doc__)
    parser.add_argument("--ingest-workers", type=int, default=2)
    args = parser.parse_args(argv)
    stack = e2e_bench.cli_stack(parser)
    result = run(
        stack, args.calls, args.licensees, args.rate, ingest_workers=args.ingest_workers, senders=args.senders
    )
    print(json.dumps(result, indent=2))
    return 0 if result["exact"] else 1


if __name__ == "__main__":
    sys.exit(main())
