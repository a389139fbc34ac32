"""End to end: ingest -> Kafka -> processor -> Kafka -> ledger -> PostgreSQL, as real processes, sustained.

The three services run as `tollgate serve ...` processes (ServiceLauncher) against a running stack. A driver
posts api-call batches of 500 over HTTP from a few concurrent senders at a fixed target rate (open loop:
batch k is due at k * 500 / rate seconds; a sender that falls behind posts at once). Every ~5 s it samples:
- sent / accepted: events posted, and events ingest answered 202 for;
- processed: the processor's `tollgate_processor_events_total{outcome="counted"}`;
- ledgered: the calls the ledger's usage rows of this run add up to (`sum(calls)` of the rows read from
  the run's billable topic: the processor aggregates usage per licensee, hour, app and org and flushes it
  every 2 s here, so a row holds many calls).

Batches are of 500 events, fewer when the rate is under 1000 events/s (at least two batches a second,
so 5 s samples see a steady flow rather than bursts). A 10 s warm-up phase, not judged, comes first.
Sustained throughput is the least-squares slope of each counter over the sending window (the first
sample left out); the figure through all three is the smallest of them. A lag (accepted - processed,
processed - ledgered) grew when its slope exceeds 5% of the rate. A rate is sustainable when ingest
accepted >= 95% of the target over the sending time and either no lag grew or, once sending stopped,
processor and ledger caught up within max(2 s, 10% of the run) (slopes of short steps are noisy).
After the ramp the run waits for any backlog to clear before the measured run starts.

`--rate auto` (the default) first ramps: 30 s steps from 50 events/s, x1.5 each, until a
step is not sustainable; the measured run then uses the last sustainable step's rate. Events are
unique (fresh run id), spread over 200 licensees with 8 registered apps each (each licensee has an
agreement, cloned from the demo's omnisoft one with its caps raised so alerts stay rare), and their
event times rise through the previous calendar month (the processor measures lateness per licensee,
so times never go backwards by more than a few batches). Each run has its own topics, processor app id
and ledger consumer group, so a reused stack's earlier traffic is not counted; periodic invoicing is
switched off in the ledger during the run, so it does not interfere.

`python -m bench.e2e_bench [--seconds 60] [--rate auto|N]` uses the stack in $TOLLGATE_* (or
`tollgate stack env`); prints JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import logging
import os
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson

from services.core.agreements import Agreement, load_agreements, parse_agreement
from services.core.events import ApiCall
from services.core.tokens import FileTokenStore
from services.demo.launcher import RunningService, ServiceLauncher
from services.demo.observe import metric_sum
from services.demo.scenario import AGREEMENTS_FILE, OMNISOFT_APPS
from services.stack.state import StackInfo

log = logging.getLogger("bench.e2e")
BATCH_TYPE = "application/cloudevents-batch+json"
PROCESSED_METRIC = "tollgate_processor_events_total"
ACCEPT_SHARE = 0.95  # ingest must accept this share of the target rate
LAG_TOLERANCE = 0.05  # a lag may grow by at most this share of the rate per second
PARTITIONS = 6


# ---------------------------------------------------------------------------------------------- maths


def linear_slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Least-squares slope of ys over xs; 0.0 with fewer than two distinct xs."""
    n = len(xs)
    if n != len(ys):
        raise ValueError("xs and ys differ in length")
    if n < 2:
        return 0.0
    mean_x, mean_y = sum(xs) / n, sum(ys) / n
    var = sum((x - mean_x) ** 2 for x in xs)
    if var == 0:
        return 0.0
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / var


@dataclass(frozen=True)
class Sample:
    """Counters at `t` seconds after a phase started, relative to the phase's start."""

    t: float
    sent: int
    accepted: int
    processed: int
    ledgered: int
    sending: bool = True


def analyse(samples: Sequence[Sample], rate: float) -> dict[str, Any]:
    """Rates (slopes) and lag growth over the sending window, and whether `rate` was sustained."""
    window = [s for s in samples if s.sending][1:]  # the first sample is warm-up
    if len(window) < 2:
        window = [s for s in samples if s.sending]
    ts = [s.t for s in window]

    def slope(values: Callable[[Sample], float]) -> float:
        return round(linear_slope(ts, [values(s) for s in window]), 1)

    rates = {
        "accepted_per_s": slope(lambda s: s.accepted),
        "processed_per_s": slope(lambda s: s.processed),
        "ledgered_per_s": slope(lambda s: s.ledgered),
    }
    lag_slopes = {
        "ingest_to_processor": slope(lambda s: s.accepted - s.processed),
        "processor_to_ledger": slope(lambda s: s.processed - s.ledgered),
    }
    limit = LAG_TOLERANCE * rate
    last = window[-1] if window else None
    lag_at_end = {
        "ingest_to_processor": (last.accepted - last.processed) if last else 0,
        "processor_to_ledger": (last.processed - last.ledgered) if last else 0,
    }
    lag_grew = {name: value > limit for name, value in lag_slopes.items()}
    achieved = last.accepted / last.t if last and last.t > 0 else 0.0
    accepted_ok = achieved >= ACCEPT_SHARE * rate
    return {
        "window_seconds": round(ts[-1] - ts[0], 1) if len(ts) > 1 else 0.0,
        "rates": rates,
        "through_all_three_per_s": min(rates.values()),
        "lag_slope_per_s": lag_slopes,
        "lag_growth_limit_per_s": round(limit, 1),
        "lag_grew": lag_grew,
        "lag_at_end": lag_at_end,
        "accepted_over_sending_per_s": round(achieved, 1),
        "accepted_ok": accepted_ok,
        "sustainable": bool(accepted_ok and not any(lag_grew.values())),
    }


def sustained(analysis: dict[str, Any], drained_after: float | None, send_seconds: float) -> bool:
    """Ingest kept the rate, and either no lag grew or the pipeline caught up quickly once sending stopped.

    Slopes over a short window are noisy (a lag measured across two services' metrics jumps by a batch);
    the drain time is the direct test: a real backlog takes longer than max(2 s, 10% of the run) to clear.
    """
    if not analysis["accepted_ok"]:
        return False
    quick_drain = drained_after is not None and drained_after <= max(2.0, 0.1 * send_seconds)
    return not any(analysis["lag_grew"].values()) or quick_drain


def batch_size(rate: float, batch: int) -> int:
    """`batch`, or less when the rate is low: at least two batches a second, so samples see a steady flow."""
    return max(1, min(batch, int(rate // 2)))


def ramp_rates(start: float, factor: float, steps: int) -> list[float]:
    """The ramp's target rates: start, start*factor, ... rounded to 10 events/s."""
    return [round(start * factor**i / 10) * 10 for i in range(steps)]


# ---------------------------------------------------------------------------------------------- traffic


def bench_agreements(licensees: int) -> list[Agreement]:
    """The demo agreements plus one per bench licensee (omnisoft's, caps x1000, no government use)."""
    demo = load_agreements(AGREEMENTS_FILE)
    template = next(a for a in demo if a.licensee_id == "omnisoft").raw
    limits = dict(template["limits"])
    for key in ("calls_per_month", "records_per_month", "calls_per_minute"):
        limits[key] = int(limits[key]) * 1000
    made = []
    for lic in range(licensees):
        raw = {
            **template,
            "licensee_id": licensee_name(lic),
            "name": f"Bench licensee {lic}",
            "limits": limits,
        }
        made.append(parse_agreement(raw))
    return demo + made


def licensee_name(index: int) -> str:
    """The bench's licensee ids."""
    return f"bench-lic-{index:04d}"


def previous_month(now: datetime) -> tuple[datetime, int]:
    """Start (UTC) and length in seconds of the calendar month before `now`."""
    this_month = now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    start = (this_month - timedelta(days=1)).replace(day=1)
    return start, int((this_month - start).total_seconds())


class Traffic:
    """Unique api-call events; event n's time rises with n inside one month, licensees round-robin."""

    def __init__(
        self, run_id: str, licensees: int, month_start: datetime, month_seconds: int, total_hint: int
    ):
        self.run_id = run_id
        self.licensees = licensees
        self.month_start = month_start
        self.month_seconds = month_seconds
        self.step = max(month_seconds / max(total_hint, 1), 0.001)
        self.next_n = 0

    def event(self, n: int) -> dict[str, Any]:
        """Event number n of this run."""
        lic = n % self.licensees
        offset = min(n * self.step, self.month_seconds - 1)
        records = 1 + n % 50
        call = ApiCall(
            event_id=f"{self.run_id}-{n}",
            source=f"bench-gateway-{lic % 16}",
            time=self.month_start + timedelta(seconds=offset),
            licensee_id=licensee_name(lic),
            app_id=OMNISOFT_APPS[(n // self.licensees) % len(OMNISOFT_APPS)],
            endpoint="/2/tweets/search/all",
            method="GET",
            status=200,
            records=records,
            bytes=records * 900,
            org_id=f"customer-{n % 97}",
            org_type="commercial",
        )
        return call.to_cloudevent()

    def bodies(self, count: int, batch: int) -> list[tuple[int, bytes]]:
        """The next `count` events as (events, JSON body) batches of at most `batch`."""
        out = []
        for first in range(self.next_n, self.next_n + count, batch):
            size = min(batch, self.next_n + count - first)
            out.append((size, orjson.dumps([self.event(n) for n in range(first, first + size)])))
        self.next_n += count
        return out


# ---------------------------------------------------------------------------------------------- driving


@dataclass
class Tally:
    """What the senders saw, shared between threads."""

    sent: int = 0
    accepted: int = 0
    duplicates: int = 0
    posts: int = 0
    max_behind_s: float = 0.0

    def __post_init__(self) -> None:
        self.statuses: Counter[str] = Counter()
        self.lock = threading.Lock()


def drive(
    url: str, token: str, bodies: list[tuple[int, bytes]], rate: float, senders: int, tally: Tally
) -> float:
    """Post `bodies` paced at `rate` events/s from `senders` threads; return the seconds it took."""
    headers = {"Content-Type": BATCH_TYPE, "Authorization": f"Bearer {token}"}
    due: list[float] = []
    elapsed = 0.0
    for size, _ in bodies:
        due.append(elapsed)
        elapsed += size / rate
    order = itertools.count()
    order_lock = threading.Lock()
    started = time.monotonic()

    def sender() -> None:
        with httpx.Client(timeout=30.0, headers=headers) as client:
            while True:
                with order_lock:
                    k = next(order)
                if k >= len(bodies):
                    return
                wait = started + due[k] - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                size, body = bodies[k]
                status, accepted, duplicates = "error", 0, 0
                try:
                    response = client.post(f"{url}/v1/events", content=body)
                    status = str(response.status_code)
                    if response.status_code == 202:
                        answer = response.json()
                        accepted, duplicates = int(answer["accepted"]), int(answer.get("duplicates", 0))
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                with tally.lock:
                    tally.sent += size
                    tally.posts += 1
                    tally.accepted += accepted
                    tally.duplicates += duplicates
                    tally.statuses[status] += 1
                    tally.max_behind_s = max(tally.max_behind_s, -wait)

    threads = [threading.Thread(target=sender, name=f"e2e-sender-{i}", daemon=True) for i in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.monotonic() - started


@dataclass
class Services:
    """The running services and how to read their counters."""

    ingest: RunningService
    processor: RunningService
    ledger: RunningService
    token: str
    database_url: str = ""
    billable_topic: str = ""
    accepted_total: int = 0
    topics: dict[str, str] = field(default_factory=dict)  # this run's topics by role (isolated_topics)
    workers: list[RunningService] = field(default_factory=list)  # every processor worker, `processor` first
    app_id: str = ""  # the processor workers' consumer group

    def __post_init__(self) -> None:
        self.workers = self.workers or [self.processor]

    def processor_sum(self, name: str, **labels: str) -> int:
        """A processor metric summed over the workers (each counts its own committed work)."""
        return int(sum(metric_sum(w.metrics_address, name, **labels) for w in self.workers))

    def counters(self) -> tuple[int, int]:
        """(processed, ledgered) now."""
        return self.processor_sum(PROCESSED_METRIC, outcome="counted"), self.ledgered()

    def ledgered(self) -> int:
        """Calls in the ledger's usage rows of this run."""
        import psycopg

        with psycopg.connect(self.database_url) as conn:
            query = "SELECT coalesce(sum(calls), 0) FROM usage_entries WHERE kafka_topic = %s"
            row = conn.execute(query, (self.billable_topic,)).fetchone()
        return int(row[0]) if row else 0


def phase(
    services: Services,
    traffic: Traffic,
    rate: float,
    seconds: float,
    *,
    batch: int = 500,
    senders: int = 4,
    sample_every: float = 5.0,
    drain_timeout: float = 60.0,
) -> dict[str, Any]:
    """Drive at `rate` for `seconds`, sampling every `sample_every` s, then wait for the pipeline to drain."""
    batch = batch_size(rate, batch)
    bodies = traffic.bodies(max(int(rate * seconds), batch), batch)
    tally = Tally()
    base_processed, base_ledgered = services.counters()
    samples: list[Sample] = []
    sending = threading.Event()
    sending.set()
    stop = threading.Event()
    started = time.monotonic()

    def take() -> Sample:
        processed, ledgered = services.counters()
        with tally.lock:
            sent, accepted = tally.sent, tally.accepted
        return Sample(
            round(time.monotonic() - started, 2),
            sent,
            accepted,
            processed - base_processed,
            ledgered - base_ledgered,
            sending.is_set(),
        )

    def sampler() -> None:
        while not stop.wait(sample_every):
            try:
                samples.append(take())
            except httpx.HTTPError as exc:
                log.warning("sampling failed: %s", exc)

    thread = threading.Thread(target=sampler, name="e2e-sampler", daemon=True)
    thread.start()
    send_seconds = drive(services.ingest.url, services.token, bodies, rate, senders, tally)
    samples.append(take())  # the end of the sending window
    sending.clear()
    drained_after = None
    deadline = time.monotonic() + drain_timeout
    while time.monotonic() < deadline:
        last = take()
        if last.processed >= last.accepted and last.ledgered >= last.processed:
            drained_after = round(time.monotonic() - started - send_seconds, 1)
            break
        time.sleep(0.5)
    stop.set()
    thread.join()
    final = take()
    samples.append(final)
    samples.sort(key=lambda s: s.t)
    result = {
        "target_rate": rate,
        "seconds": seconds,
        "send_seconds": round(send_seconds, 1),
        "batch": batch,
        "senders": senders,
        "sent": tally.sent,
        "accepted": tally.accepted,
        "duplicates": tally.duplicates,
        "statuses": dict(tally.statuses),
        "max_sender_behind_s": round(tally.max_behind_s, 2),
        "processed": final.processed,
        "ledgered": final.ledgered,
        "drained_after_s": drained_after,
        "complete": tally.accepted == tally.sent and final.ledgered >= final.accepted,
        "samples": [asdict(s) for s in samples],
    }
    result.update(analyse(samples, rate))
    result["sustainable"] = sustained(result, drained_after, send_seconds)
    services.accepted_total += tally.accepted
    return result


def wait_drained(services: Services, timeout: float) -> float | None:
    """Wait until processor and ledger have caught up with everything accepted so far; seconds, or None."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        processed, ledgered = services.counters()
        if processed >= services.accepted_total and ledgered >= services.accepted_total:
            return round(time.monotonic() - started, 1)
        time.sleep(1.0)
    return None


def isolated_topics(bootstrap: str, partitions: int = PARTITIONS) -> tuple[dict[str, str], dict[str, str]]:
    """Fresh topics for one run, so a reused stack's earlier traffic is not counted; returns (names, env)."""
    from services.stack.kafka import create_topics

    prefix = f"bench.e2e.{uuid.uuid4().hex[:8]}"
    names = {
        "input": f"{prefix}.api-calls",
        "dlq": f"{prefix}.api-calls.dlq",
        "agreements": f"{prefix}.agreements",
        "alerts": f"{prefix}.alerts",
        "billable": f"{prefix}.billable",
        "billable_dlq": f"{prefix}.billable.dlq",
    }
    specs = {
        name: {
            "partitions": partitions,
            "configs": {"cleanup.policy": "compact"} if key == "agreements" else {},
        }
        for key, name in names.items()
    }
    create_topics(bootstrap, partitions, specs)
    env = {
        "TOLLGATE_INGEST_TOPIC": names["input"],
        "TOLLGATE_PROCESSOR_TOPIC_INPUT": names["input"],
        "TOLLGATE_PROCESSOR_TOPIC_DLQ": names["dlq"],
        "TOLLGATE_PROCESSOR_TOPIC_AGREEMENTS": names["agreements"],
        "TOLLGATE_PROCESSOR_TOPIC_ALERTS": names["alerts"],
        "TOLLGATE_PROCESSOR_TOPIC_BILLABLE": names["billable"],
        "TOLLGATE_PROCESSOR_PARTITIONS": str(partitions),
        "TOLLGATE_LEDGER_TOPIC": names["billable"],
        "TOLLGATE_LEDGER_DLQ_TOPIC": names["billable_dlq"],
        "TOLLGATE_LEDGER_AGREEMENTS_TOPIC": names["agreements"],
        "TOLLGATE_LEDGER_CONSUMER_GROUP": f"{prefix}.ledger",
        "TOLLGATE_PROCESSOR_APP_ID": prefix.replace(".", "-"),
    }
    return names, env


@contextlib.contextmanager
def running_services(
    stack: StackInfo,
    workdir: Path,
    licensees: int,
    agreements: list[Agreement] | None = None,
    env: dict[str, str] | None = None,
    *,
    processors: int = 1,
    ledgers: int = 1,
) -> Iterator[Services]:
    """Start ledger (migrates), load agreements, start processor and ingest; stop them all afterwards.

    Every run has its own topics, processor app id and ledger consumer group; PostgreSQL is shared, but
    usage ids are unique to the run and the ledger's counter counts only this process's rows. The
    agreements default to `bench_agreements(licensees)`; `env` adds to (or overrides) the services' env.
    `processors` workers join one consumer group and `ledgers` instances another, one after the other.
    """
    from services.clients.agreements import publish_agreements
    from services.ledger.adapters.postgres.agreements_store import wait_consumed

    tokens_file = workdir / "tokens.json"
    token = FileTokenStore(tokens_file).create("bench-e2e", "ingest")
    names, topic_env = isolated_topics(stack.kafka_bootstrap)
    extra = {
        "TOLLGATE_LOG_LEVEL": "warning",
        "TOLLGATE_LEDGER_INVOICE_INTERVAL_SECONDS": "86400",
        **topic_env,
        **(env or {}),
    }
    launcher = ServiceLauncher(stack, workdir, tokens_file, extra)
    app_id = topic_env["TOLLGATE_PROCESSOR_APP_ID"]
    try:
        ledger = launcher.start_ledger(timeout=120)
        for n in range(2, ledgers + 1):
            launcher.start_ledger(key=f"ledger-{n}", timeout=120)
        agreements = bench_agreements(licensees) if agreements is None else agreements
        ends = publish_agreements(stack.kafka_bootstrap, agreements, names["agreements"])
        wait_consumed(stack.database_url, names["agreements"], ends, 60)  # the ledger reads them from Kafka
        workers = [launcher.start_processor(app_id=app_id, timeout=180)]
        for n in range(2, processors + 1):
            workers.append(launcher.start_processor(key=f"processor-{n}", app_id=app_id, timeout=180))
        ingest = launcher.start_ingest(timeout=120)
        yield Services(ingest, workers[0], ledger, token, stack.database_url, names["billable"], topics=names,
                       workers=workers, app_id=app_id)
    finally:
        launcher.stop_all()


def run(
    stack: StackInfo,
    seconds: float = 60.0,
    rate: float | None = None,
    *,
    ramp_start: float = 50.0,
    ramp_factor: float = 1.5,
    ramp_steps: int = 8,
    ramp_seconds: float = 30.0,
    warmup_seconds: float = 10.0,
    licensees: int = 200,
    senders: int = 4,
    batch: int = 500,
    sample_every: float = 5.0,
    workdir: Path | None = None,
) -> dict[str, Any]:
    """Start the services, find (or take) a rate, drive it for `seconds`; return the samples and verdict."""
    month_start, month_seconds = previous_month(datetime.now(UTC))
    plan = rate * seconds if rate else sum(ramp_rates(ramp_start, ramp_factor, ramp_steps)) * ramp_seconds
    plan += (rate or ramp_start * ramp_factor ** (ramp_steps - 1)) * seconds
    traffic = Traffic(uuid.uuid4().hex[:10], licensees, month_start, month_seconds, int(plan * 1.2))
    result: dict[str, Any] = {
        "licensees": licensees,
        "month": month_start.strftime("%Y-%m"),
        "batch": batch,
        "senders": senders,
        "seconds": seconds,
    }
    with contextlib.ExitStack() as stack_ctx:
        if workdir is None:
            workdir = Path(stack_ctx.enter_context(tempfile.TemporaryDirectory(prefix="tollgate-e2e-")))
        services = stack_ctx.enter_context(running_services(stack, workdir, licensees))
        common: dict[str, Any] = {"batch": batch, "senders": senders, "sample_every": sample_every}
        if warmup_seconds > 0:  # first connections, assignments and caches: not judged
            warm = phase(services, traffic, rate or ramp_start, warmup_seconds, **common, drain_timeout=60.0)
            result["warmup"] = {k: warm[k] for k in ("target_rate", "seconds", "accepted", "ledgered")}
        if rate is None:
            ramp = []
            chosen = None
            for step_rate in ramp_rates(ramp_start, ramp_factor, ramp_steps):
                step = phase(services, traffic, step_rate, ramp_seconds, **common, drain_timeout=90.0)
                ramp.append(
                    {
                        k: step[k]
                        for k in (
                            "target_rate",
                            "rates",
                            "lag_slope_per_s",
                            "lag_grew",
                            "sustainable",
                            "drained_after_s",
                            "statuses",
                        )
                    }
                )
                log.info("ramp %s events/s: sustainable=%s", step_rate, step["sustainable"])
                if not step["sustainable"] or step["drained_after_s"] is None:
                    break
                chosen = step_rate
            result["ramp"] = ramp
            result["backlog_drained_before_run_s"] = wait_drained(services, timeout=600.0)
            rate = chosen or ramp_start / 2
            result["rate_source"] = "ramp" if chosen else "ramp found nothing sustainable; half its start"
        else:
            result["rate_source"] = "given"
        main = phase(services, traffic, rate, seconds, **common, drain_timeout=max(60.0, seconds))
        result.update({"rate": rate, "run": main})
        result["sustained_events_per_s"] = main["through_all_three_per_s"]
        result["lag_grew"] = main["lag_grew"]
        result["sustainable"] = main["sustainable"]
    return result


def cli_stack(parser: argparse.ArgumentParser) -> StackInfo:
    """A bench command's logging (INFO, clients quiet) and the stack in $TOLLGATE_* (else a usage error)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("kafka", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    stack = StackInfo.from_env(os.environ)
    if stack is None:
        parser.error('no stack: set TOLLGATE_* (eval "$(tollgate stack env)")')
    return stack


def main(argv: list[str] | None = None) -> int:
    """Command line entry point: JSON on stdout."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rate", default="auto", help="events/s, or `auto` to ramp first (default)")
    parser.add_argument("--licensees", type=int, default=200)
    parser.add_argument("--senders", type=int, default=4)
    args = parser.parse_args(argv)
    stack = cli_stack(parser)
    rate = None if args.rate == "auto" else float(args.rate)
    result = run(stack, args.seconds, rate, licensees=args.licensees, senders=args.senders)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
