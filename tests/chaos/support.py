"""Helpers of the chaos tier: a known event set and its exact expectation, a private whole stack with the
three services as real processes, HTTP senders that behave like real clients, and the checks.

The expectation is computed from the event set alone: per-licensee calls and records, the set of event
identities, the alert ids the pure domain (`services.processor.domain`) raises on the same events, and the
October invoices from the agreements. A run is exact when the ledger, the processor's state and the alerts
topic show exactly that: nothing lost, nothing doubled.
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
from services.demo.observe import metric_sum, read_topic
from services.demo.scenario import AGREEMENTS_FILE
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


@dataclass(frozen=True)
class Expectation:
    """What an undisturbed system must show for one event set."""

    usage: dict[str, tuple[int, int]]  # licensee -> (calls, records)
    events: frozenset[tuple[str, str]]
    alert_ids: frozenset[str]
    invoices: dict[str, int]  # licensee -> October total, minor units

    @property
    def count(self) -> int:
        """How many distinct events."""
        return len(self.events)


def domain_alert_ids(calls: Sequence[ApiCall], agreements: Sequence[Agreement]) -> frozenset[str]:
    """The alert ids the pure domain raises on `calls` (ids are order-independent: rule, window, level)."""
    simulation = Simulation(by_licensee(agreements), datetime(2026, 11, 1, tzinfo=UTC))
    for call in calls:
        kind = simulation.feed(call).kind
        assert kind == COUNTED, f"{call.event_id} was {kind}: widen the lateness"
    return frozenset(simulation.alert_ids)


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
    return Expectation(
        usage={licensee: (usage[licensee], records[licensee]) for licensee in usage},
        events=frozenset((c.source, c.event_id) for c in calls),
        alert_ids=domain_alert_ids(calls, agreements),
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


class Deployment:
    """The three services on one private stack, with the faults a test can inject."""

    def __init__(self, stack: LocalStack, agreements: Sequence[Agreement], sources: Iterable[str]) -> None:
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
        self.launcher = ServiceLauncher(self.info, self.workdir, tokens_file, SERVICE_ENV)
        self.agreements = list(agreements)
        self.restarts: Counter[str] = Counter()

    def start(self) -> None:
        """Publish the agreements to the compacted topic, start ledger, processor, ingest, and wait until the
        ledger stored the agreements (it reads them from the topic)."""
        from services.cli.agreements import publish_agreements
        from services.ledger.agreements_store import wait_consumed
        from services.ledger.migrate import apply_migrations

        apply_migrations(self.info.database_url, "tollgate_app")
        ends: dict[int, int] = {}
        # A topic created a moment ago can still answer NotLeaderForPartition: retry, as an operator would.
        wait_for(lambda: _published(publish_agreements, self.info.kafka_bootstrap, self.agreements, ends), 60,
                 "the agreements topic to take the agreements", interval=1.0)
        for key in ("ledger", "processor", "ingest"):
            self.start_service(key)
        wait_consumed(self.info.database_url, topics.AGREEMENTS, ends, 60)

    def start_service(self, key: str) -> RunningService:
        """Start (or start again, same data dir) one service and wait until it is ready."""
        starter = {
            "ingest": self.launcher.start_ingest,
            "ledger": self.launcher.start_ledger,
            "processor": self.launcher.start_processor,
        }[key]
        return starter()

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

    def processed(self) -> int:
        """Decisions the current processor process has taken (0 while it is not answering)."""
        try:
            address = self.service("processor").metrics_address
            return int(metric_sum(address, "tollgate_processor_events_total"))
        except (httpx.HTTPError, KeyError):
            return 0

    def ledger_rows(self) -> int:
        """Usage rows in the ledger now (0 while PostgreSQL is down)."""
        import psycopg

        try:
            with psycopg.connect(self.info.database_url, connect_timeout=3) as conn:
                row = conn.execute("SELECT count(*) FROM usage_entries").fetchone()
        except psycopg.Error:
            return 0
        return int(row[0]) if row else 0

    def ledger_rows_of(self, batch: Sequence[Mapping[str, Any]]) -> int:
        """How many events of `batch` the ledger holds a row for now (0 while PostgreSQL is down)."""
        import psycopg

        ids = [str(event["id"]) for event in batch]
        try:
            with psycopg.connect(self.info.database_url, connect_timeout=3) as conn:
                row = conn.execute(
                    "SELECT count(DISTINCT source_event_id) FROM usage_entries"
                    " WHERE source_event_id = ANY(%s)",
                    (ids,),
                ).fetchone()
        except psycopg.Error:
            return 0
        return int(row[0]) if row else 0

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
def deployment(label: str, calls: Sequence[ApiCall], agreements: Sequence[Agreement]) -> Iterator[Deployment]:
    """A private stack with the three services started and the agreements loaded; torn down after."""
    with private_stack(label) as stack:
        deployed = Deployment(stack, agreements, {c.source for c in calls})
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
    """Whether the processor committed the whole input topic and the ledger stored the whole billable
    topic: everything sent has been decided on, and its effects are durable."""
    try:
        bootstrap = deployed.info.kafka_bootstrap
        calls_end = end_offsets(bootstrap, topics.API_CALLS)
        if committed(bootstrap, PROCESSOR_GROUP, topics.API_CALLS) != calls_end:
            return False
        billable_end = {p: o for p, o in end_offsets(bootstrap, topics.BILLABLE).items() if o > 0}
        stored = ledger_offsets(deployed.info.database_url)
        return all(stored.get(p, 0) >= o for p, o in billable_end.items())
    except Exception as exc:  # a part may be down or restarting
        log.debug("not settled: %r", exc)
        return False


def wait_until_settled(deployed: Deployment, expected_rows: int, timeout: float = 240.0) -> float:
    """Wait until the ledger holds `expected_rows` rows and the pipeline has nothing left in flight."""
    return wait_for(
        lambda: deployed.ledger_rows() >= expected_rows and settled(deployed),
        timeout,
        lambda: f"{expected_rows} ledger rows and no lag; now {snapshot(deployed)}",
        interval=0.5,
    )


def snapshot(deployed: Deployment) -> dict[str, Any]:
    """Where the pipeline stands: for a failure message."""
    bootstrap = deployed.info.kafka_bootstrap
    facts: dict[str, Any] = {"alive": deployed.alive(), "decided_by_current_processor": deployed.processed(),
                             "ledger_rows": deployed.ledger_rows()}
    with contextlib.suppress(Exception):
        facts["api_calls_end"] = sum(end_offsets(bootstrap, topics.API_CALLS).values())
        facts["processor_committed"] = sum(committed(bootstrap, PROCESSOR_GROUP, topics.API_CALLS).values())
        facts["billable_end"] = sum(end_offsets(bootstrap, topics.BILLABLE).values())
        facts["ledger_stored_offsets"] = sum(ledger_offsets(deployed.info.database_url).values())
    return facts


@dataclass
class Observed:
    """What the system shows after a run."""

    usage: dict[str, tuple[int, int]]  # from the ledger: licensee -> (sum of calls, sum of records)
    events: Counter[tuple[str, str]]  # ledger rows per event identity
    alert_ids: frozenset[str]
    alert_messages: int
    processor_usage: dict[str, tuple[int, int]]  # what the processor counted (its committed billable records)
    invoices: dict[str, int]


def ledger_usage(database_url: str) -> tuple[dict[str, tuple[int, int]], Counter[tuple[str, str]]]:
    """Per licensee (calls, records) in the ledger, and how many rows each event identity has."""
    import psycopg

    with psycopg.connect(database_url) as conn:
        totals = conn.execute(
            "SELECT licensee_id, sum(calls), sum(records) FROM usage_entries GROUP BY 1"
        ).fetchall()
        rows = conn.execute(
            "SELECT source_event_source, source_event_id, count(*) FROM usage_entries GROUP BY 1, 2"
        ).fetchall()
    return (
        {str(lic): (int(c), int(r)) for lic, c, r in totals},
        Counter({(str(s), str(i)): int(n) for s, i, n in rows}),
    )


def processor_usage(
    bootstrap: str, licensees: Iterable[str], month: str = MONTH
) -> dict[str, tuple[int, int]]:
    """Per licensee (calls, records) of `month` that the processor counted, across every restart.

    The processor emits one billable record per counted call in the same Kafka transaction as the state
    change, so its committed billable records, not deduplicated here, are its counts: a call it counted
    twice would show up twice.
    """
    wanted = set(licensees)
    usage: dict[str, tuple[int, int]] = {}
    for record in read_topic(bootstrap, topics.BILLABLE):
        data = record["data"]
        licensee = data["licensee_id"]
        if licensee in wanted and data["period_start"].startswith(month):
            calls, records = usage.get(licensee, (0, 0))
            usage[licensee] = (calls + int(data["calls"]), records + int(data["records"]))
    return usage


def observe(deployed: Deployment, licensees: Iterable[str], month: str = MONTH) -> Observed:
    """Read the ledger, the processor's state of `licensees`, the alerts topic and the invoices."""
    usage, events = ledger_usage(deployed.info.database_url)
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
        usage=usage,
        events=events,
        alert_ids=alert_ids,
        alert_messages=len(messages),
        processor_usage=processor_usage(deployed.info.kafka_bootstrap, licensees, month),
        invoices=invoices,
    )


@dataclass(frozen=True)
class Verdict:
    """How a run compares with the expectation."""

    lost: int
    doubled: int
    problems: list[str]


def compare(expected: Expectation, seen: Observed) -> Verdict:
    """Lost = expected events the ledger lacks; doubled = events counted more than once anywhere (ledger
    rows, ledger sums, the processor's counts); problems name every difference, alerts and invoices too."""
    problems: list[str] = []
    lost = len(expected.events - set(seen.events))
    extra = set(seen.events) - expected.events
    doubled = sum(n - 1 for n in seen.events.values() if n > 1) + len(extra)
    if lost:
        missing = sorted(expected.events - set(seen.events))
        problems.append(f"{lost} events missing from the ledger, e.g. {missing[:3]}")
    if extra:
        problems.append(f"{len(extra)} unexpected events in the ledger, e.g. {sorted(extra)[:3]}")
    if seen.usage != expected.usage:
        problems.append(f"ledger usage {seen.usage} != expected {expected.usage}")
    if seen.processor_usage != expected.usage:
        counted = seen.processor_usage
        over = sum(max(0, counted.get(lic, (0, 0))[0] - calls) for lic, (calls, _) in expected.usage.items())
        doubled = max(doubled, over)
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
              before_send: BeforeSend | None = None) -> FaultRun:
    """On a private stack: send the scenario (batches of 200, four senders, paced), inject `fault` while
    it flows, wait until everything settled, compare with the expectation, and record a results row.
    `fault` gets the deployment, the senders and a dict to put facts in (for the notes and asserts);
    `sends` replaces the batches, and `before_send(deployed, k)` runs before the k-th send."""
    chosen = scenario()
    facts: dict[str, Any] = {}
    with deployment(label, chosen.calls, chosen.agreements) as deployed:
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


NOTE_FACTS = ("at", "in_flight_at_kill", "down_seconds", "hits", "failed_requests", "copies")


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
    return SoakRun(sent, sending, rss_mid, rss_end, len(sent) - deployed.ledger_rows(), senders.report)
