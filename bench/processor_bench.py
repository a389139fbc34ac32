"""Processor benchmark: one quix worker over a dedupe store of N keys, and the engine comparison.

Usage: `python -m bench.processor_bench [BOOTSTRAP] [--keys N] [--events E] [--drains D]
[--engine-events M] [--no-latency]` (default bootstrap $TOLLGATE_KAFKA_BOOTSTRAP, N from
$TOLLGATE_BENCH_DEDUPE_KEYS, default 10,000,000); prints JSON.

One run, in this order, on fresh topics and one consumer group:

1. **Pre-fill** the worker's changelog with N dedupe keys (bench/dedupe_prefill.py), 50 licensees,
   Zipf-split so the first has 30%, event times over the 7-day horizon before the drains.
2. **Drains**: D batches of E calls each (same licensees and skew; event times continue at the
   pre-fill's density, so each drain expires about as many keys as it adds; 1% are re-sent pre-filled
   calls, which must come out as duplicates). Before each, the raw loop (confluent-kafka consume +
   JSON parse + produce) reads the same batch. The worker of the first drain starts with an empty state
   directory: it recovers the N keys from the changelog first (its start-up is the **recovery time**);
   the others restart on the warm state directory; the last one starts cold again (state directory
   deleted: recovery with N keys plus the earlier drains'). Each drain is clocked from the worker's
   first handled record (its /metrics, polled every 20 ms) until the group has committed the batch's
   end offsets; its RSS is read at that moment.
3. **Latency** on the last worker: probes under a background load of half the median drain rate, kept
   only if the group's lag stays flat (else a quarter, then an eighth); bench/processor_latency.py.
4. **Engines**: the issue's small job on quix-streams and on faust-streaming, and the raw loop, on a
   fresh topic of M calls (bench/engine_bench.py).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench import dedupe_prefill, engine_bench, processor_latency
from bench.processor_drain import raw_consume_produce, time_drain
from bench.processor_maths import median_of, ratio, summarise_latency, zipf_weights
from bench.processor_worker import GroupWatch, spawn
from bench.processor_workload import batch_calls, create_topics, load_agreements_for, produce_calls

log = logging.getLogger("bench.processor")
HORIZON_S = 7 * 86400
LICENSEES, TOP_SHARE, RESEND_SHARE = 50, 0.30, 0.01
LOAD_FRACTIONS = (0.5, 0.25, 0.125)
DEFAULT_KEYS = 10_000_000


class Bench:
    """One run's topics, group and state directory, and the event-time plan of its batches."""

    def __init__(self, bootstrap: str, keys: int, events: int, drains: int, workdir: Path) -> None:
        self.bootstrap, self.keys, self.events, self.workdir = bootstrap, keys, events, workdir
        self.weights = zipf_weights(LICENSEES, TOP_SHARE)
        self.names = create_topics(bootstrap, extra=("RAWOUT",))
        self.group = f"bench-{uuid.uuid4().hex[:8]}"
        self.state_dir = workdir / "state"
        density = max(keys, events) / HORIZON_S  # calls per second of event time
        self.span = events / density  # event-time seconds one batch covers
        # The drains end an hour before now (the processor refuses calls ahead of its clock).
        self.prefill_end = int(time.time() - 3600 - drains * self.span)
        self.batches = 0
        self.high_water = float(self.prefill_end)  # the latest event time sent so far
        load_agreements_for(bootstrap, self.names["AGREEMENTS"], LICENSEES)

    def prefill(self) -> dedupe_prefill.Prefill:
        """Write the N keys into the changelog the worker will recover from."""
        topic = dedupe_prefill.changelog_topic(self.group, self.names["INPUT"])
        resends = int(self.events * RESEND_SHARE) * 8  # enough for every drain
        return dedupe_prefill.prefill(
            self.bootstrap, topic, self.weights, self.keys, self.prefill_end, HORIZON_S, resends
        )

    def drain(self, recent: list[tuple[int, str, float]], cold: bool, watch: GroupWatch) -> dict[str, Any]:
        """Produce the next batch, run the raw loop on it, then a worker on it; the measures."""
        start = self.prefill_end + self.batches * self.span
        take = int(self.events * RESEND_SHARE)
        resends, recent[:take] = recent[:take], []
        calls = batch_calls(self.weights, self.events, start, self.span, resends)
        self.high_water = start + self.span
        before = watch.ends()
        produce_calls(self.bootstrap, self.names["INPUT"], calls)
        ends = watch.ends()
        self.batches += 1
        raw = raw_consume_produce(self.bootstrap, self.names["INPUT"], before, ends, self.names["RAWOUT"])
        if cold:
            shutil.rmtree(self.state_dir, ignore_errors=True)
        worker = spawn(self.bootstrap, self.names, self.group, self.state_dir)
        try:
            result = time_drain(worker, watch, len(calls), ends, timeout=3600)
        except BaseException:
            worker.stop()
            raise
        result.update(
            cold_state=cold,
            resends=len(resends),
            raw=raw,
            ratio_to_raw=ratio(result["events_per_s"], raw["events_per_s"]),
        )
        return {"worker": worker, **result}


def _latency(bench: Bench, worker: Any, drain_rate: float, seconds: float) -> list[dict[str, Any]]:
    """Attempts at half, a quarter, an eighth of the drain rate on `worker`; stop at the first sustained."""
    attempts = []
    at = time.time() - 60  # after every drained call: never late
    bench.high_water = at
    for fraction in LOAD_FRACTIONS:
        attempt = processor_latency.measure(
            bench.bootstrap, bench.names, worker, LICENSEES, at, drain_rate * fraction, seconds=seconds
        )
        attempts.append({**attempt, "load_fraction": fraction})
        if attempt["valid"]:
            break
    return attempts


def _drains(
    bench: Bench, prefill: dedupe_prefill.Prefill, drains: int, watch: GroupWatch
) -> tuple[list[dict[str, Any]], Any]:
    """The drains, the first and last from an empty state directory; the last worker is left running."""
    runs, worker = [], None
    for n in range(drains):
        if worker is not None:
            worker.stop()
        result = bench.drain(prefill.recent, cold=n in (0, drains - 1), watch=watch)
        worker = result.pop("worker")
        runs.append(result)
    return runs, worker


def run(
    bootstrap: str,
    keys: int | None = None,
    events: int = 200_000,
    drains: int = 4,
    engine_events: int = 50_000,
    latency: bool = True,
    seconds: float = 20.0,
) -> dict[str, Any]:
    """One run (see the module doc); per-drain results and their medians."""
    keys = int(os.environ.get("TOLLGATE_BENCH_DEDUPE_KEYS", DEFAULT_KEYS)) if keys is None else keys
    with tempfile.TemporaryDirectory(prefix="tollgate-procbench-") as workdir:
        bench = Bench(bootstrap, keys, events, drains, Path(workdir))
        prefill = bench.prefill()
        watch = GroupWatch(bootstrap, bench.group, bench.names["INPUT"])
        try:
            runs, worker = _drains(bench, prefill, drains, watch)
            rate = median_of([r["events_per_s"] for r in runs]) or 0.0
            try:
                attempts = _latency(bench, worker, rate, seconds) if latency else []
            finally:
                worker.stop()
            stored = dedupe_prefill.count_keys(bench.state_dir, int(bench.high_water * 1000))
        finally:
            watch.close()
    engines = engine_comparison(bootstrap, engine_events) if engine_events else None
    return {
        "prefill": dedupe_prefill.describe(prefill),
        "drains": runs,
        "latency_attempts": attempts,
        "engines": engines,
        "median": {**summarise(runs, attempts, keys), "dedupe_keys_at_end": stored},
    }


def engine_comparison(bootstrap: str, events: int) -> dict[str, Any]:
    """The small job on both engines and the raw loop, on one fresh topic of `events` calls."""
    names = create_topics(bootstrap, extra=("RAWOUT",))
    start = time.time() - 86400
    calls = batch_calls(zipf_weights(LICENSEES, TOP_SHARE), events, start, 3600, [])
    produce_calls(bootstrap, names["INPUT"], calls)
    watch = GroupWatch(bootstrap, "none", names["INPUT"])
    ends = watch.ends()
    watch.close()
    return engine_bench.compare(bootstrap, names["INPUT"], names["RAWOUT"], len(calls), ends)


def summarise(runs: list[dict[str, Any]], attempts: list[dict[str, Any]], keys: int) -> dict[str, Any]:
    """Medians over the drains; recovery over the cold starts; latency over the sustained attempts."""
    cold = [r for r in runs if r["cold_state"]]
    warm = [r for r in runs if not r["cold_state"]]
    return {
        "dedupe_keys_prefilled": keys,
        "processor_events_per_s": median_of([r["events_per_s"] for r in runs]),
        "raw_events_per_s": median_of([r["raw"]["events_per_s"] for r in runs]),
        "ratio": median_of([r["ratio_to_raw"] for r in runs]),
        "recovery_s": median_of([r["startup_s"] for r in cold]),
        "warm_startup_s": median_of([r["startup_s"] for r in warm]),
        "rss_mb": median_of([r["rss_mb"] for r in runs]),
        "rss_max_mb": max((r["rss_mb"] or 0 for r in runs), default=None),
        "duplicates_expected": sum(r["resends"] for r in runs),
        "duplicates_seen": sum(r["duplicates"] for r in runs),
        "events_per_cpu_s": median_of([r["events_per_cpu_s"] for r in runs]),
        "worker_cpu_share": median_of([r["worker_cpu_share"] for r in runs]),
        "load_average_1m": median_of([r["load_average_1m"] for r in runs]),
        **summarise_latency(attempts),
    }


def main(argv: list[str] | None = None) -> int:
    """Run and print the JSON."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("bootstrap", nargs="?", default=os.environ.get("TOLLGATE_KAFKA_BOOTSTRAP"))
    parser.add_argument("--keys", type=int, default=None, help="dedupe keys to pre-fill")
    parser.add_argument("--events", type=int, default=200_000, help="calls per drain")
    parser.add_argument("--drains", type=int, default=4)
    parser.add_argument("--engine-events", type=int, default=50_000, help="0 skips the engine comparison")
    parser.add_argument("--seconds", type=float, default=20.0, help="latency probe window")
    parser.add_argument("--no-latency", action="store_true")
    args = parser.parse_args(argv)
    if not args.bootstrap:
        parser.error("no bootstrap: pass one or set TOLLGATE_KAFKA_BOOTSTRAP")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("kafka", "aiokafka", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    result = run(
        args.bootstrap,
        args.keys,
        args.events,
        args.drains,
        args.engine_events,
        not args.no_latency,
        args.seconds,
    )
    print(json.dumps(result, indent=2, default=str))  # the benchmark reports on stdout
    return 0


if __name__ == "__main__":
    sys.exit(main())
