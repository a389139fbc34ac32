"""Helpers of the chaos tier: a known event set and its exact expectation, a private whole stack with the
three services as real processes, HTTP senders that behave like real clients, and the checks.

The expectation is computed from the event set alone: per-licensee calls and records, the set of event
identities, the calls and records billed per licensee and usage bucket and the alert ids the pure domain
(`services.processor.domain`) gives on the same events, and the October invoices from the agreements. The
processor bills aggregated deltas (one per bucket and flush, no per-call ids), so a run is exact when the
ledger and the processor's committed billable deltas add up to exactly those buckets with every usage_id
once, and the alerts topic and the invoices show exactly the expected ones: nothing lost, nothing doubled.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import random
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, Decimal
from pathlib import Path
from typing import Any

import httpx
from senders import Senders, SendReport, batches

from services.core import topics
from services.core.agreements import Agreement, load_agreements, parse_agreement
from services.core.events import ApiCall
from services.core.tokens import FileTokenStore
from services.demo.launcher import RunningService, ServiceLauncher
from services.demo.observe import metric_sum, read_topic, wait_members_sharing
from services.demo.scenario import AGREEMENTS_FILE
from services.processor.domain import usage as usage_domain
from services.processor.domain.simulate import Simulation, by_licensee
from services.processor.domain.step import COUNTED
from services.stack import LocalStack, StackConfig, StackInfo
from services.stack.config import REPO_ROOT
from services.stack.kafka import install_jars

log = logging.getLogger("chaos")
logging.getLogger("kafka").setLevel(logging.ERROR)
logging.getLogger("httpx").setLevel(logging.WARNING)

MONTH = "2026-10"
MONTH_START = datetime(2026, 10, 1, tzinfo=UTC)
# Events spread over 30 days of October. Senders keep at most a few batches (a few days of event time) in
# flight, so an event re-sent after a fault is never more than the processor's 7-day lateness behind.
SPAN = timedelta(days=30)
BURST_START = MONTH_START + timedelta(days=2, hours=10, minutes=15)
PROCESSOR_GROUP = "tollgate-processor"
RESULTS_PATH = REPO_ROOT / "bench-results" / "chaos.md"
OMNISOFT_APPS = ("omni-search", "omni-ads", "omni-news", "omni-assist", "omni-social", "omni-cloud")

# ---------------------------------------------------------------------------------------------------------
# The event set and what it must produce


def chaos_agreements() -> list[Agreement]:
    """The demo agreements, plus clones of omnisoft and pebble under new ids so the load spreads out."""
    demo = {a.licensee_id: a for a in load_agreements(AGREEMENTS_FILE)}
    clones = [
        parse_agreement({**demo["omnisoft"].raw, "licensee_id": "omnisoft-eu", "name": "Omnisoft Europe"}),
        parse_agreement({**demo["pebble"].raw, "licensee_id": "pebble-north", "name": "Pebble North"}),
        parse_agreement({**demo["pebble"].raw, "licensee_id": "pebble-south", "name": "Pebble South"}),
    ]
    return [*demo.values(), *clones]


def _call(licensee: str, n: int, at: datetime, app: str, records: int, org: str, org_type: str) -> ApiCall:
    return ApiCall(
        event_id=f"{licensee}-{n:06d}", source=f"gateway-{licensee}", time=at, licensee_id=licensee,
        app_id=app, endpoint="/2/tweets/search/all", method="GET", status=200, records=records,
        bytes=records * 900, org_id=org, org_type=org_type,
    )


def _spread(rng: random.Random, count: int) -> list[datetime]:
    seconds = int(SPAN.total_seconds()) - 1
    return sorted(MONTH_START + timedelta(seconds=rng.randint(0, seconds)) for _ in range(count))


def chaos_calls(seed: int = 7, scale: float = 1.0) -> list[ApiCall]:
    """About 7,500 calls (at scale 1) of seven licensees in October 2026, in event-time order, unique ids.

    - omnisoft: past its calls and records caps, one burst of 150 calls in a minute (rate breach), an
      unregistered app, and government use without notice;
    - omnisoft-eu: past the calls warning ratio; pebble, pebble-north, pebble-south: near their caps, and
      pebble-north serves a government org its agreement prohibits;
    - oldco: after its agreement ended; ghost: no agreement at all.
    """
    rng = random.Random(seed)  # noqa: S311 - a reproducible event set, not a secret
    calls: list[ApiCall] = []

    def add(licensee: str, count: int, app: Callable[[int], str], records: int, org: Callable[[int], str],
            org_type: str = "commercial", times: list[datetime] | None = None) -> None:
        start = sum(1 for c in calls if c.licensee_id == licensee)
        at = times or _spread(rng, count)
        calls.extend(
            _call(licensee, start + i, at[i], app(i), records, org(i), org_type) for i in range(count)
        )

    def n(count: int) -> int:
        return max(1, round(count * scale))

    add("omnisoft", n(2300), lambda i: OMNISOFT_APPS[i % 6], 25, lambda i: f"customer-{i % 17}")
    burst = [BURST_START + timedelta(milliseconds=300 * i) for i in range(150)]
    add("omnisoft", 150, lambda i: "omni-search", 25, lambda i: "customer-burst", times=burst)
    add("omnisoft", n(40), lambda i: "omni-shadow", 25, lambda i: "customer-shadow")
    add("omnisoft", n(30), lambda i: "omni-cloud", 25, lambda i: "gov-intel-agency", "government")
    add("omnisoft", n(20), lambda i: "omni-research", 25, lambda i: "gov-statistics-office", "government")
    add("omnisoft-eu", n(1700), lambda i: OMNISOFT_APPS[i % 6], 20, lambda i: f"eu-customer-{i % 9}")
    add("pebble", n(850), lambda i: "pebble-app", 10, lambda i: f"reader-{i % 5}")
    add("pebble-north", n(880), lambda i: "pebble-app", 10, lambda i: f"north-reader-{i % 5}")
    add("pebble-north", n(5), lambda i: "pebble-app", 10, lambda i: "gov-city-council", "government")
    add("pebble-south", n(900), lambda i: "pebble-app", 11, lambda i: f"south-reader-{i % 5}")
    add("oldco", n(400), lambda i: "oldco-archive", 5, lambda i: "oldco-newsroom")
    add("ghost", n(200), lambda i: "ghost-app", 3, lambda i: "ghost-org")
    return sorted(calls, key=lambda c: (c.time, c.source, c.event_id))


Bucket = tuple[str, str]  # (licensee, usage bucket id as services.processor.domain.usage writes it)
Totals = tuple[int, int]  # (calls, records)


@dataclass(frozen=True)
class Expectation:
    """What an undisturbed system must show for one event set."""

    usage: dict[str, Totals]  # licensee -> (calls, records)
    buckets: dict[Bucket, Totals]  # (licensee, usage bucket) -> (calls, records) billed
    events: frozenset[tuple[str, str]]
    alert_ids: frozenset[str]
    invoices: dict[str, int]  # licensee -> October total, minor units

    @property
    def count(self) -> int:
        """How many distinct events."""
        return len(self.events)


def simulate(calls: Sequence[ApiCall], agreements: Sequence[Agreement],
             now: datetime = datetime(2026, 11, 1, tzinfo=UTC)) -> Simulation:
    """The pure domain over `calls`, each of which must count: its alert ids (order-independent: rule,
    window, level) and the calls and records it bills per licensee and usage bucket."""
    simulation = Simulation(by_licensee(agreements), now)
    for call in calls:
        kind = simulation.feed(call).kind
        assert kind == COUNTED, f"{call.event_id} was {kind}: widen the lateness"
    return simulation


def billed_buckets(simulation: Simulation) -> dict[Bucket, Totals]:
    """What a simulation billed, per licensee and usage bucket."""
    return {key: (calls, records) for key, (calls, records) in simulation.billed.items()}


def buckets_of(calls: Iterable[ApiCall], agreements: Sequence[Agreement]) -> set[Bucket]:
    """The usage buckets `calls` are billed in (the agreement in force at each call decides its notice)."""
    in_force = by_licensee(agreements)
    return {(c.licensee_id, usage_domain.bucket_id(c, in_force(c.licensee_id, c.time))) for c in calls}


def invoice_total(agreement: Agreement, calls: Sequence[ApiCall]) -> int:
    """October in minor units, from the agreement alone (as tests/e2e states it for the demo)."""
    mine = [c for c in calls if c.licensee_id == agreement.licensee_id]
    if not all(agreement.is_active(c.time) for c in mine):
        return 0  # usage outside any agreement is shown to finance but priced at zero
    plan = agreement.plan
    excess = max(0, sum(c.records for c in mine) - plan.included_records)
    overage = (Decimal(excess) * plan.overage_per_1000_records_minor / 1000).to_integral_value(ROUND_CEILING)
    return plan.monthly_fee_minor + plan.annual_fee_minor // 12 + int(overage)


def expect(calls: Sequence[ApiCall], agreements: Sequence[Agreement]) -> Expectation:
    """The exact expectation of `calls`, from the events and agreements alone."""
    usage: Counter[str] = Counter()
    records: Counter[str] = Counter()
    for call in calls:
        usage[call.licensee_id] += 1
        records[call.licensee_id] += call.records
    simulation = simulate(calls, agreements)
    return Expectation(
        usage={licensee: (usage[licensee], records[licensee]) for licensee in usage},
        buckets=billed_buckets(simulation),
        events=frozenset((c.source, c.event_id) for c in calls),
        alert_ids=frozenset(simulation.alert_ids),
        invoices={a.licensee_id: invoice_total(a, calls) for a in agreements},
    )


# ---------------------------------------------------------------------------------------------------------
# A private stack with the three services


@contextlib.contextmanager
def private_stack(label: str) -> Iterator[LocalStack]:
    """A throwaway local stack in /tmp (the postgres user must reach it), stopped and removed after."""
    stack_dir = Path(tempfile.mkdtemp(prefix=f"tollgate-chaos-{label}-"))
    stack = LocalStack(StackConfig(stack_dir=stack_dir, parts=("kafka", "postgres")))
    try:
        install_jars(stack.config.libs_dir, stack.config.kafka_pom)
        stack.up()
        yield stack
    finally:
        with contextlib.suppress(Exception):  # thrown away: no clean broker shutdown needed
            stack.stop_part("kafka", kill=True)
        stack.down()
        if not os.environ.get("TOLLGATE_KEEP_STACK"):
            shutil.rmtree(stack_dir, ignore_errors=True)


# October 2026 closed (plus the ledger's 72 h grace) before these tests run, so a ledger's periodic invoicer
# would issue October as soon as it sees usage: at start-up after a restart, mid-stream, with part of the
# usage (the rest then bills as late usage next month). Real usage arrives while its month is open; to
# model that, the periodic invoicer starts in a far month and finance issues October once all has settled.
SERVICE_ENV = {"TOLLGATE_LEDGER_BILLING_START": "2099-01"}


@dataclass(frozen=True)
class Shape:
    """How many of each service a deployment runs: processor workers (one consumer group), ledger
    instances (one consumer group each topic) and ingest processes on one port."""

    processors: int = 1
    ledgers: int = 1
    ingest_workers: int = 1

    def services(self) -> list[str]:
        """The services' keys in start order: the first of a kind is its plain name, then "<name>-2", ..."""
        def named(service: str, count: int) -> list[str]:
            return [service, *(f"{service}-{n}" for n in range(2, count + 1))]

        return [*named("ledger", self.ledgers), *named("processor", self.processors), "ingest"]

    def env(self) -> dict[str, str]:
        """The services' environment for this shape."""
        workers = {"TOLLGATE_INGEST_WORKERS": str(self.ingest_workers)} if self.ingest_workers > 1 else {}
        return {**SERVICE_ENV, **workers}


class Deployment:
    """The three services on one private stack, with the faults a test can inject."""

    def __init__(self, stack: LocalStack, agreements: Sequence[Agreement], sources: Iterable[str],
                 shape: Shape = Shape()) -> None:
        self.stack = stack
        info = stack.info()
        assert info is not None
        self.info: StackInfo = info
        self.workdir = stack.config.stack_dir / "services"
        self.workdir.mkdir(parents=True, exist_ok=True)
        tokens_file = self.workdir / "tokens.json"
        store = FileTokenStore(tokens_file)
        self.tokens = {
            "ingest": store.create("chaos-gateways", "ingest", sorted(set(sources))),
            "finance": store.create("chaos-finance", "finance"),
        }
        self.shape = shape
        self.launcher = ServiceLauncher(self.info, self.workdir, tokens_file, shape.env())
        self.agreements = list(agreements)
        self.restarts: Counter[str] = Counter()

    def start(self) -> None:
        """Publish the agreements to the compacted topic, start ledger, processor, ingest, and wait until the
        ledger stored the agreements (it reads them from the topic)."""
        from services.clients.agreements import publish_agreements
        from services.ledger.adapters.postgres.agreements_store import wait_consumed
        from services.ledger.adapters.postgres.migrate import apply_migrations

        apply_migrations(self.info.database_url, "tollgate_app")
        ends: dict[int, int] = {}
        # A topic created a moment ago can still answer NotLeaderForPartition: retry, as an operator would.
        wait_for(lambda: _published(publish_agreements, self.info.kafka_bootstrap, self.agreements, ends), 60,
                 "the agreements topic to take the agreements", interval=1.0)
        for key in self.shape.services():
            self.start_service(key)
        wait_consumed(self.info.database_url, topics.AGREEMENTS, ends, 60)
        if self.shape.processors > 1:  # else the first batches would meet the group still forming
            wait_members_sharing(self.info.kafka_bootstrap, PROCESSOR_GROUP, topics.API_CALLS,
                                 self.shape.processors, 120.0)
        if self.shape.ingest_workers > 1:  # ready means one process ready: the senders' connections would
            port = self.service("ingest").ports["http"]  # all meet it if they came before the others bound
            wait_for(lambda: listeners(port) == self.shape.ingest_workers, 60, f"ingest processes on {port}")

    def start_service(self, key: str) -> RunningService:
        """Start (or start again, same data dir) one service (a key of `Shape.services`) and wait until it is
        ready."""
        starter = {
            "ingest": self.launcher.start_ingest,
            "ledger": self.launcher.start_ledger,
            "processor": self.launcher.start_processor,
        }[key.partition("-")[0]]
        return starter(key=key)

    def kill(self, key: str) -> None:
        """kill -9 one service: no shutdown hook runs."""
        self.launcher.kill(key)

    def restart(self, key: str) -> None:
        """Start a killed service again (same data dir)."""
        self.start_service(key)
        self.restarts[key] += 1

    def service(self, key: str) -> RunningService:
        """The running process of one service."""
        return self.launcher.running[key]

    def ingest_url(self) -> str:
        """Where ingest listens now (a restarted ingest listens on a new port)."""
        running = self.launcher.running.get("ingest")
        return running.url if running is not None else ""

    def alive(self) -> dict[str, bool]:
        """Whether each started service still runs."""
        return {key: s.process.poll() is None for key, s in self.launcher.running.items()}

    def processor_keys(self) -> list[str]:
        """The keys of the processor workers running now."""
        return [key for key in self.launcher.running if key.partition("-")[0] == "processor"]

    def decided_by(self) -> dict[str, int]:
        """Decisions each running processor worker took since it started (0 while it is not answering)."""
        decided = {}
        for key in self.processor_keys():
            try:
                address = self.service(key).metrics_address
                decided[key] = int(metric_sum(address, "tollgate_processor_events_total"))
            except (httpx.HTTPError, KeyError):
                decided[key] = 0
        return decided

    def processed(self) -> int:
        """Decisions the current processor processes have taken, summed over the workers."""
        return sum(self.decided_by().values())

    def ledger_calls(self) -> int:
        """Calls the ledger's usage rows add up to now (0 while PostgreSQL is down)."""
        import psycopg

        try:
            with psycopg.connect(self.info.database_url, connect_timeout=3) as conn:
                row = conn.execute("SELECT coalesce(sum(calls), 0) FROM usage_entries").fetchone()
        except psycopg.Error:
            return 0
        return int(row[0]) if row else 0

    def ledger_holds(self, wanted: Mapping[Bucket, Totals]) -> bool:
        """Whether the ledger's usage in each of the `wanted` buckets adds up to exactly its calls and
        records now (False while PostgreSQL is down)."""
        import psycopg

        try:
            stored = ledger_usage(self.info.database_url).buckets
        except psycopg.Error:
            return False
        return all(stored.get(key) == totals for key, totals in wanted.items())

    def open_usage_partitions(self) -> int | None:
        """Input partitions where the running processor workers hold usage buckets not yet sent as billable
        deltas (None while one of them is not answering, or none runs)."""
        if not self.processor_keys():
            return None
        try:
            return sum(
                int(metric_sum(self.service(key).metrics_address, "tollgate_processor_open_usage_partitions"))
                for key in self.processor_keys()
            )
        except (httpx.HTTPError, KeyError):
            return None

    def log_since(self, key: str, offset: int) -> str:
        """The text a service logged past byte `offset` (its log survives restarts)."""
        path = self.workdir / f"{key}.log"
        try:
            return path.read_bytes()[offset:].decode(errors="replace")
        except OSError:
            return ""

    def log_size(self, key: str) -> int:
        """The current length of a service's log."""
        path = self.workdir / f"{key}.log"
        return path.stat().st_size if path.is_file() else 0

    def stop(self) -> None:
        """Stop every service."""
        self.launcher.stop_all()

    def discard(self) -> None:
        """kill -9 every service: the stack is thrown away, nothing needs a clean shutdown."""
        if self.shape.ingest_workers > 1:  # but a killed supervisor would leave its metrics dir in /tmp
            self.launcher.stop("ingest")
        for key in list(self.launcher.running):
            self.launcher.kill(key)


def _published(publish: Callable[[str, Sequence[Agreement]], dict[int, int]], bootstrap: str,
               agreements: Sequence[Agreement], ends: dict[int, int]) -> bool:
    try:
        ends.update(publish(bootstrap, agreements))
    except Exception as exc:
        log.info("publishing the agreements failed, retrying: %s", exc)
        return False
    return True


@contextlib.contextmanager
def deployment(label: str, calls: Sequence[ApiCall], agreements: Sequence[Agreement],
               shape: Shape = Shape()) -> Iterator[Deployment]:
    """A private stack with the services of `shape` started and the agreements loaded; torn down after."""
    with private_stack(label) as stack:
        deployed = Deployment(stack, agreements, {c.source for c in calls}, shape)
        try:
            deployed.start()
            yield deployed
        finally:
            deployed.discard()


# ---------------------------------------------------------------------------------------------------------
# Waiting and observing


def wait_for(
    condition: Callable[[], bool], timeout: float, what: str | Callable[[], str], interval: float = 0.2
) -> float:
    """Poll `condition` until true; return the seconds it took, or fail naming `what` (text, or a
    function that describes the situation at the deadline)."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            described = what if isinstance(what, str) else what()
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {described}")
        time.sleep(interval)
    return time.monotonic() - started


def holds_within(condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.2) -> bool:
    """Poll `condition` for at most `timeout` seconds; whether it came true. For a fault that lasts until
    it hit the load: the caller goes on either way and its test asserts the hit, so the check can fail."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            log.warning("gave up after %.0fs waiting for %s", timeout, what)
            return False
        time.sleep(interval)
    return True


def listeners(port: int) -> int:
    """How many sockets listen on 127.0.0.1:`port` now (SO_REUSEPORT lets each ingest process bind one)."""
    local = f"0100007F:{port:04X}"
    rows = [line.split() for line in Path("/proc/net/tcp").read_text().splitlines()[1:]]
    return sum(1 for row in rows if row[1] == local and row[3] == "0A")  # 0A: TCP_LISTEN


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    """The end offset of each partition of `topic`."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        return {tp.partition: int(offset) for tp, offset in consumer.end_offsets(partitions).items()}
    finally:
        consumer.close()


def committed(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    """The offsets `group` committed on each partition of `topic` (0 when none)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        return {tp.partition: int(consumer.committed(tp) or 0) for tp in partitions}
    finally:
        consumer.close()


def ledger_offsets(database_url: str, topic: str = topics.BILLABLE) -> dict[int, int]:
    """The next offsets the ledger stored (with its rows) for each partition of `topic`."""
    import psycopg

    with psycopg.connect(database_url, connect_timeout=3) as conn:
        rows = conn.execute(
            "SELECT kafka_partition, max(next_offset) FROM consumer_offsets WHERE topic = %s GROUP BY 1",
            (topic,),
        ).fetchall()
    return {int(p): int(o) for p, o in rows}


def settled(deployed: Deployment) -> bool:
    """Whether the processor committed the whole input topic and holds no usage bucket it has not sent,
    and the ledger stored the whole billable topic: everything sent has been decided on and billed, and
    its effects are durable."""
    try:
        bootstrap = deployed.info.kafka_bootstrap
        calls_end = end_offsets(bootstrap, topics.API_CALLS)
        if committed(bootstrap, PROCESSOR_GROUP, topics.API_CALLS) != calls_end:
            return False
        if deployed.open_usage_partitions() != 0:
            return False
        billable_end = {p: o for p, o in end_offsets(bootstrap, topics.BILLABLE).items() if o > 0}
        stored = ledger_offsets(deployed.info.database_url)
        return all(stored.get(p, 0) >= o for p, o in billable_end.items())
    except Exception as exc:  # a part may be down or restarting
        log.debug("not settled: %r", exc)
        return False


def wait_until_settled(deployed: Deployment, expected_calls: int, timeout: float = 240.0) -> float:
    """Wait until the ledger's usage adds up to `expected_calls` calls and the pipeline has nothing left
    in flight (no open usage bucket, nothing unread)."""
    return wait_for(
        lambda: deployed.ledger_calls() >= expected_calls and settled(deployed),
        timeout,
        lambda: f"{expected_calls} calls in the ledger and no lag; now {snapshot(deployed)}",
        interval=0.5,
    )


def snapshot(deployed: Deployment) -> dict[str, Any]:
    """Where the pipeline stands: for a failure message."""
    bootstrap = deployed.info.kafka_bootstrap
    facts: dict[str, Any] = {"alive": deployed.alive(), "decided_by_current_processor": deployed.processed(),
                             "open_usage_partitions": deployed.open_usage_partitions(),
                             "ledger_calls": deployed.ledger_calls()}
    with contextlib.suppress(Exception):
        facts["api_calls_end"] = sum(end_offsets(bootstrap, topics.API_CALLS).values())
        facts["processor_committed"] = sum(committed(bootstrap, PROCESSOR_GROUP, topics.API_CALLS).values())
        facts["billable_end"] = sum(end_offsets(bootstrap, topics.BILLABLE).values())
        facts["ledger_stored_offsets"] = sum(ledger_offsets(deployed.info.database_url).values())
    return facts


@dataclass
class Billed:
    """Usage as one reader sees it: per licensee and per usage bucket (calls, records), and how many
    times each usage_id appears (rows in the ledger, committed deltas on the billable topic)."""

    usage: dict[str, Totals]
    buckets: dict[Bucket, Totals]
    usage_ids: Counter[str]

    @property
    def repeated_ids(self) -> dict[str, int]:
        """The usage_ids seen more than once, with how many times."""
        return {usage_id: n for usage_id, n in self.usage_ids.items() if n > 1}


@dataclass
class Observed:
    """What the system shows after a run."""

    ledger: Billed  # from the ledger's usage_entries
    processor: Billed  # what the processor billed: its committed billable deltas
    alert_ids: frozenset[str]
    alert_messages: int
    invoices: dict[str, int]

    @property
    def usage(self) -> dict[str, Totals]:
        """The ledger's (calls, records) per licensee."""
        return self.ledger.usage

    @property
    def processor_usage(self) -> dict[str, Totals]:
        """The processor's billed (calls, records) per licensee."""
        return self.processor.usage


def _billed(rows: Iterable[tuple[str, str, int, int, str]]) -> Billed:
    """A Billed from (licensee, bucket, calls, records, usage_id) rows, nothing deduplicated."""
    usage: Counter[str] = Counter()
    usage_records: Counter[str] = Counter()
    buckets: Counter[Bucket] = Counter()
    bucket_records: Counter[Bucket] = Counter()
    ids: Counter[str] = Counter()
    for licensee, bucket, calls, records, usage_id in rows:
        usage[licensee] += calls
        usage_records[licensee] += records
        buckets[licensee, bucket] += calls
        bucket_records[licensee, bucket] += records
        ids[usage_id] += 1
    return Billed(
        {licensee: (calls, usage_records[licensee]) for licensee, calls in usage.items()},
        {key: (calls, bucket_records[key]) for key, calls in buckets.items()},
        ids,
    )


def ledger_usage(database_url: str) -> Billed:
    """The ledger's usage rows summed per licensee and per usage bucket (its hour, app, org, org type and
    notice, keyed as the processor's domain keys it), and the rows each usage_id has."""
    import psycopg

    with psycopg.connect(database_url, connect_timeout=3) as conn:
        rows = conn.execute(
            "SELECT licensee_id, extract(epoch FROM period_start)::bigint, app_id, coalesce(org_id, ''),"
            " coalesce(org_type, ''), government_notified, calls, records, usage_id FROM usage_entries"
        ).fetchall()
    return _billed(
        (str(licensee), _bucket(int(hour), app, org, org_type, notified), int(calls), int(records), str(uid))
        for licensee, hour, app, org, org_type, notified, calls, records, uid in rows
    )


def _bucket(hour: int, app: str, org: str, org_type: str, notified: bool | None) -> str:
    """The usage bucket id of a stored row, as services.processor.domain.usage.bucket_id writes it."""
    notice = "" if notified is None else ("1" if notified else "0")
    return f"{hour}|{app}|{org}|{org_type}|{notice}"


def processor_usage(bootstrap: str, licensees: Iterable[str], month: str = MONTH) -> Billed:
    """What the processor billed for `licensees` in `month`, across every restart: its committed
    billable deltas, summed per licensee and usage bucket and not deduplicated here.

    The deltas leave in the same Kafka transaction as the state that forgets their buckets, so these
    sums are its counts: a call it billed twice, in two deltas or one delta delivered twice (which the
    ledger would store once, by usage_id), shows up here.
    """
    wanted = set(licensees)
    rows = []
    for record in read_topic(bootstrap, topics.BILLABLE):
        data = record["data"]
        licensee = data["licensee_id"]
        if licensee in wanted and data["period_start"].startswith(month):
            rows.append((licensee, usage_domain.bucket_of(data), int(data["calls"]), int(data["records"]),
                         str(data["usage_id"])))
    return _billed(rows)


def observe(deployed: Deployment, licensees: Iterable[str], month: str = MONTH) -> Observed:
    """Read the ledger, the processor's state of `licensees`, the alerts topic and the invoices."""
    ledger = ledger_usage(deployed.info.database_url)
    messages = read_topic(deployed.info.kafka_bootstrap, topics.ALERTS)
    alert_ids = frozenset(m["data"]["alert_id"] for m in messages)
    invoices = {}
    with httpx.Client(
        base_url=deployed.service("ledger").url,
        headers={"Authorization": f"Bearer {deployed.tokens['finance']}"},
        timeout=30.0,
    ) as client:
        for agreement in deployed.agreements:
            response = client.post(f"/v1/licensees/{agreement.licensee_id}/invoices/{month}")
            response.raise_for_status()
            invoices[agreement.licensee_id] = int(response.json()["total_minor"])
    return Observed(
        ledger=ledger,
        processor=processor_usage(deployed.info.kafka_bootstrap, licensees, month),
        alert_ids=alert_ids,
        alert_messages=len(messages),
        invoices=invoices,
    )


@dataclass(frozen=True)
class Verdict:
    """How a run compares with the expectation."""

    lost: int
    doubled: int
    problems: list[str]


def bucket_gaps(expected: Mapping[Bucket, Totals], seen: Mapping[Bucket, Totals]) -> tuple[int, int]:
    """(lost, doubled) calls of `seen` against `expected`, bucket by bucket: calls short of a bucket's
    expectation are lost, calls past it (or in a bucket not expected at all) are doubled."""
    lost = doubled = 0
    for key in expected.keys() | seen.keys():
        want, got = expected.get(key, (0, 0))[0], seen.get(key, (0, 0))[0]
        lost += max(0, want - got)
        doubled += max(0, got - want)
    return lost, doubled


def _bucket_problems(where: str, expected: Mapping[Bucket, Totals], seen: Billed) -> list[str]:
    problems = []
    wrong = sorted(k for k in expected.keys() | seen.buckets.keys() if expected.get(k) != seen.buckets.get(k))
    if wrong:
        shown = [(k, expected.get(k), seen.buckets.get(k)) for k in wrong[:3]]
        problems.append(f"{where}: {len(wrong)} usage buckets differ (bucket, expected, seen), e.g. {shown}")
    if seen.repeated_ids:
        problems.append(f"{where}: {len(seen.repeated_ids)} usage_ids more than once, "
                        f"e.g. {sorted(seen.repeated_ids.items())[:3]}")
    return problems


def compare(expected: Expectation, seen: Observed) -> Verdict:
    """Lost = expected calls the ledger lacks; doubled = calls counted more than once anywhere (ledger and
    processor, per usage bucket, and usage_ids stored or delivered more than once); problems name every
    difference, per licensee and per bucket, alerts and invoices too."""
    lost, doubled = bucket_gaps(expected.buckets, seen.ledger.buckets)
    doubled += sum(n - 1 for n in seen.ledger.repeated_ids.values())
    problems = _bucket_problems("ledger", expected.buckets, seen.ledger)
    if seen.usage != expected.usage:
        problems.append(f"ledger usage {seen.usage} != expected {expected.usage}")
    processor_lost, processor_doubled = bucket_gaps(expected.buckets, seen.processor.buckets)
    processor_doubled += sum(n - 1 for n in seen.processor.repeated_ids.values())
    lost, doubled = max(lost, processor_lost), max(doubled, processor_doubled)
    problems += _bucket_problems("processor", expected.buckets, seen.processor)
    if seen.processor_usage != expected.usage:
        problems.append(f"processor counts {seen.processor_usage} != expected {expected.usage}")
    if seen.alert_ids != expected.alert_ids:
        problems.append(
            f"alerts: missing {sorted(expected.alert_ids - seen.alert_ids)}, "
            f"unexpected {sorted(seen.alert_ids - expected.alert_ids)}"
        )
    if seen.invoices != expected.invoices:
        problems.append(f"invoices {seen.invoices} != expected {expected.invoices}")
    return Verdict(lost, doubled, problems)


# ---------------------------------------------------------------------------------------------------------
# The results table

RESULTS: list[dict[str, Any]] = []


def record_result(fault: str, events: int, accepted: int, verdict: Verdict, seconds: float, note: str = ""
                  ) -> None:
    """Add one row to the session's results table."""
    RESULTS.append({
        "fault": fault, "events": events, "accepted": accepted, "lost": verdict.lost,
        "doubled": verdict.doubled, "seconds": round(seconds, 1), "note": note,
    })


def results_table(rows: Sequence[Mapping[str, Any]] = RESULTS) -> str:
    """The results as a Markdown table."""
    head = (
        "| fault | events | accepted | lost | doubled | seconds | notes |\n"
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |\n"
    )
    return head + "".join(
        f"| {r['fault']} | {r['events']} | {r['accepted']} | {r['lost']} | {r['doubled']} | {r['seconds']} "
        f"| {r['note']} |\n"
        for r in rows
    )


def write_results(path: Path = RESULTS_PATH) -> Path | None:
    """Write the table (with the date and machine) to bench-results/chaos.md; None when nothing ran."""
    if not RESULTS:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    path.write_text(f"# Chaos tier results ({stamp}, {os.cpu_count()} CPUs)\n\n{results_table()}")
    return path


# ---------------------------------------------------------------------------------------------------------
# One fault, end to end

SCALE = float(os.environ.get("TOLLGATE_CHAOS_SCALE", "0.8"))  # 0.8: about 6,000 events
SEND_RATE = float(os.environ.get("TOLLGATE_CHAOS_RATE", "400"))  # events a second, all senders together


@dataclass(frozen=True)
class Scenario:
    """The chaos event set, its agreements, and its exact expectation."""

    calls: list[ApiCall]
    events: list[dict[str, Any]]
    agreements: list[Agreement]
    expected: Expectation


@functools.cache
def scenario(scale: float = SCALE) -> Scenario:
    """The session's event set (computed once: the pure-domain run takes a few seconds)."""
    calls = chaos_calls(scale=scale)
    agreements = chaos_agreements()
    return Scenario(calls, [c.to_cloudevent() for c in calls], agreements, expect(calls, agreements))


@dataclass
class FaultRun:
    """What one fault run saw, for the test's assertions and the results table."""

    scenario: Scenario
    report: SendReport
    seen: Observed
    verdict: Verdict
    seconds: float
    facts: dict[str, Any]


Fault = Callable[[Deployment, Senders, dict[str, Any]], None]
BeforeSend = Callable[[Deployment, int], None]
HOLD_AT = 0.6  # no batch past this share of the load goes out before the fault has been placed


def run_fault(name: str, label: str, fault: Fault, sends: Sequence[list[dict[str, Any]]] | None = None,
              before_send: BeforeSend | None = None, shape: Shape = Shape()) -> FaultRun:
    """On a private stack: send the scenario (batches of 200, four senders, paced), inject `fault` while
    it flows, wait until everything settled, compare with the expectation, and record a results row.
    `fault` gets the deployment, the senders and a dict to put facts in (for the notes and asserts);
    `sends` replaces the batches, `before_send(deployed, k)` runs before the k-th send, and `shape` says
    how many of each service run."""
    chosen = scenario()
    facts: dict[str, Any] = {}
    with deployment(label, chosen.calls, chosen.agreements, shape) as deployed:
        try:
            started = time.monotonic()
            plan = sends if sends is not None else batches(chosen.events)
            report = _send_with_fault(deployed, plan, fault, facts, before_send)
            facts["failed_requests"] = report.failures
            facts["settle_seconds"] = round(wait_until_settled(deployed, chosen.expected.count), 1)
            seconds = time.monotonic() - started
            seen = observe(deployed, chosen.expected.usage)
            verdict = compare(chosen.expected, seen)
            facts["alive"] = deployed.alive()
        except BaseException:
            keep_logs(deployed, label)
            raise
        if verdict.problems:
            log.error("%s: %s; logs kept in %s", name, verdict.problems, keep_logs(deployed, label))
    note = ", ".join(f"{k}={v}" for k, v in facts.items() if k in NOTE_FACTS)
    record_result(name, chosen.expected.count, len(report.accepted), verdict, seconds, note)
    return FaultRun(chosen, report, seen, verdict, seconds, facts)


def _send_with_fault(deployed: Deployment, plan: Sequence[list[dict[str, Any]]], fault: Fault,
                     facts: dict[str, Any], before_send: BeforeSend | None) -> SendReport:
    """Send `plan` while `fault` runs. The last batches wait until the fault releases them (or returns),
    so a fault that waits for progress meets a load still to send on a fast machine and on a slow one."""
    senders = Senders(deployed.ingest_url, deployed.tokens["ingest"], rate=SEND_RATE)
    hook = None if before_send is None else functools.partial(before_send, deployed)
    senders.start(plan, hook, hold_at=fraction_of(len(plan), HOLD_AT))
    try:
        fault(deployed, senders, facts)
    finally:
        senders.release()  # a fault that failed must not leave the senders held
    return senders.join()


def note_fault(facts: dict[str, Any], senders: Senders, done: int, total: int, unit: str) -> None:
    """Record where a fault hit: its own measure of progress, and the batches still to send then."""
    facts["at"] = f"{done}/{total} {unit}, {senders.batches_unsent}/{senders.batch_count} batches unsent"
    facts["progress_at_fault"] = done
    facts["total"] = total
    facts["batches_unsent"] = senders.batches_unsent


NOTE_FACTS = ("at", "in_flight_at_kill", "killed", "decided_by_worker", "down_seconds", "hits",
              "failed_requests", "copies", "ingest_requests_by_worker")


def fraction_of(total: int, fraction: float) -> int:
    """`fraction` of `total`, at least 1."""
    return max(1, int(total * fraction))


def keep_logs(deployed: Deployment, label: str) -> Path:
    """Copy the services' and the stack's logs to bench-results/chaos-logs/<label> (the stack is removed)."""
    target = RESULTS_PATH.parent / "chaos-logs" / label
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True, exist_ok=True)
    stack_dir = deployed.stack.config.stack_dir
    for path in [*deployed.workdir.glob("*.log"), *(stack_dir / "logs").glob("*.log"),
                 stack_dir / "postgres" / "postgres.log"]:
        with contextlib.suppress(OSError):
            shutil.copy(path, target / path.name)
    return target


def rss_mib(pid: int) -> float:
    """Resident memory of a process in MiB, from /proc/<pid>/status (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise LookupError(f"no VmRSS for pid {pid}")


def services_rss(deployed: Deployment) -> dict[str, float]:
    """Resident memory (MiB) of each service process."""
    return {key: round(rss_mib(s.process.pid), 1) for key, s in deployed.launcher.running.items()}


@dataclass
class SoakRun:
    """What a fixed-rate soak sent and measured."""

    sent: list[ApiCall]
    seconds: float
    rss_mid: dict[str, float]
    rss_end: dict[str, float]
    behind_at_end: int
    report: SendReport

    @property
    def rate(self) -> float:
        """Events a second actually sent."""
        return len(self.sent) / self.seconds


def soak(deployed: Deployment, seconds: float, rate: float, make: Callable[[int, datetime], ApiCall],
         ticks_per_second: int = 2) -> SoakRun:
    """Post `rate` events a second (one batch a tick) for `seconds`; sample the services' memory in the
    middle and at the end."""
    senders = Senders(deployed.ingest_url, deployed.tokens["ingest"])
    per_tick = max(1, round(rate / ticks_per_second))
    sent: list[ApiCall] = []
    rss_mid: dict[str, float] = {}
    started = time.monotonic()
    headers = {"Authorization": f"Bearer {deployed.tokens['ingest']}"}
    with httpx.Client(timeout=10.0, headers=headers) as client:
        tick = 0
        while (elapsed := time.monotonic() - started) < seconds:
            now = datetime.now(UTC)
            batch = [make(len(sent) + i, now) for i in range(per_tick)]
            senders.deliver(client, [call.to_cloudevent() for call in batch])
            sent += batch
            if not rss_mid and elapsed >= seconds / 2:
                rss_mid = services_rss(deployed)
            tick += 1
            pause = started + tick / ticks_per_second - time.monotonic()
            if pause > 0:
                time.sleep(pause)  # the fixed rate is the soak's input, not a wait for a result
    sending = time.monotonic() - started
    rss_end = services_rss(deployed)
    return SoakRun(sent, sending, rss_mid, rss_end, len(sent) - deployed.ledger_calls(), senders.report)
