"""Helpers for driving real processor workers against a real broker."""

from __future__ import annotations

import itertools
import logging
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic
from prometheus_client.parser import text_string_to_metric_families

from services.clients.agreements import publish_agreements
from services.core import topics as core_topics
from services.core.agreements import Agreement, load_agreements, parse_agreement
from services.core.events import ApiCall, dumps, loads
from services.core.security import PLAINTEXT, KafkaSecurity, librdkafka_options
from services.demo.launcher import free_port
from services.demo.observe import members_sharing
from services.demo.scenario import AGREEMENTS_FILE
from services.processor.domain import usage
from services.processor.domain.groups import decide_group, group_call
from services.processor.domain.step import COUNTED, DUPLICATE, Policy, decide
from services.processor.domain.store import Write
from services.processor.settings import COMMIT_INTERVAL_SECONDS

logging.getLogger("kafka").setLevel(logging.WARNING)
ROOT = Path(__file__).resolve().parents[3]
PARTITIONS = 6


@dataclass(frozen=True)
class Topics:
    """One test's private topic names."""

    prefix: str
    input: str
    dlq: str
    agreements: str
    alerts: str
    billable: str

    def env(self) -> dict[str, str]:
        """Overrides that point a worker at these topics."""
        return {
            "TOLLGATE_PROCESSOR_TOPIC_INPUT": self.input,
            "TOLLGATE_PROCESSOR_TOPIC_DLQ": self.dlq,
            "TOLLGATE_PROCESSOR_TOPIC_AGREEMENTS": self.agreements,
            "TOLLGATE_PROCESSOR_TOPIC_ALERTS": self.alerts,
            "TOLLGATE_PROCESSOR_TOPIC_BILLABLE": self.billable,
        }

    def all(self) -> list[str]:
        """Every topic name."""
        return [self.input, self.dlq, self.agreements, self.alerts, self.billable]


def create_topics(broker: str, label: str, security: KafkaSecurity = PLAINTEXT) -> Topics:
    """Create a fresh, uniquely named set of topics."""
    prefix = f"t-{re.sub(r'[^a-z0-9]+', '-', label.lower())[:40]}-{uuid.uuid4().hex[:8]}"
    names = Topics(
        prefix,
        f"{prefix}.api-calls",
        f"{prefix}.api-calls.dlq",
        f"{prefix}.agreements",
        f"{prefix}.alerts",
        f"{prefix}.billable",
    )
    admin = KafkaAdminClient(bootstrap_servers=broker, **security.kafka_python())
    try:
        admin.create_topics(
            [
                NewTopic(
                    n,
                    PARTITIONS,
                    1,
                    topic_configs={"cleanup.policy": "compact"} if n == names.agreements else {},
                )
                for n in names.all()
            ]
        )
    finally:
        admin.close()
    return names


def delete_topics(broker: str, names: Topics, security: KafkaSecurity = PLAINTEXT) -> None:
    """Remove a test's topics (the worker's internal topics, named after its app id, stay: they are small)."""
    admin = KafkaAdminClient(bootstrap_servers=broker, **security.kafka_python())
    try:
        admin.delete_topics(names.all())
    except Exception as exc:  # cleanup must not hide the test's own failure
        logging.getLogger(__name__).warning("could not delete topics: %s", exc)
    finally:
        admin.close()


def publish_demo_agreements(broker: str, topics: Topics) -> None:
    """Load demo/agreements.yaml onto the agreements topic through the CLI."""
    command = [
        sys.executable,
        "-m",
        "services.cli",
        "agreements",
        "load",
        str(AGREEMENTS_FILE),
        "--bootstrap",
        broker,
        "--topic",
        topics.agreements,
    ]
    # Our own CLI with fixed arguments.
    subprocess.run(  # noqa: S603
        command,
        check=True,
        cwd=ROOT,
        env={**os.environ, "TOLLGATE_DATABASE_URL": ""},
        capture_output=True,
        timeout=60,
    )


def _producer(broker: str, security: KafkaSecurity = PLAINTEXT) -> Producer:
    # murmur2: the partitions kafka-python (and so the CLI) choose for a key, so every client of a test
    # puts a licensee's calls in the same partition.
    return Producer({
        "bootstrap.servers": broker, "acks": "all", "linger.ms": 20, "partitioner": "murmur2_random",
        "compression.type": "lz4", "queue.buffering.max.messages": 500_000, **librdkafka_options(security),
    })  # fmt: skip


def produce(
    broker: str,
    topic: str,
    calls: Iterable[ApiCall],
    raw: Iterable[tuple[bytes, bytes]] = (),
    security: KafkaSecurity = PLAINTEXT,
) -> int:
    """Produce calls keyed by licensee_id (and raw key/value pairs), acks=all; return how many."""
    producer = _producer(broker, security)
    failed: list[str] = []

    def delivered(error: Any, message: Any) -> None:
        if error is not None:
            failed.append(str(error))

    count = 0
    pairs = ((c.licensee_id.encode(), dumps(c.to_cloudevent())) for c in calls)
    for key, value in itertools.chain(pairs, raw):
        while True:
            try:
                producer.produce(topic, value=value, key=key, on_delivery=delivered)
                break
            except BufferError:  # the local queue is full: let deliveries drain it
                producer.poll(0.1)
        count += 1
    left = producer.flush(60)
    assert left == 0 and not failed, f"{left} records not delivered, errors: {failed[:3]}"
    return count


def produce_in_transactions(
    broker: str, topic: str, calls: list[ApiCall], per_transaction: int, aborted: Sequence[ApiCall] = ()
) -> None:
    """Produce calls in committed transactions, each followed by `aborted` in an aborted one.

    Every commit or abort marker takes an offset, so the input has holes a reader must step over.
    """
    producer = KafkaProducer(bootstrap_servers=broker, transactional_id=f"tx-{uuid.uuid4().hex[:8]}")
    producer.init_transactions()
    for start in range(0, len(calls), per_transaction):
        for batch, commit in ((calls[start : start + per_transaction], True), (aborted, False)):
            if not batch:
                continue
            producer.begin_transaction()
            for call in batch:
                producer.send(topic, key=call.licensee_id.encode(), value=dumps(call.to_cloudevent()))
            if commit:
                producer.commit_transaction()
            else:
                producer.flush()
                producer.abort_transaction()
    producer.close()


def read_all(
    broker: str, topic: str, timeout: float = 60.0, security: KafkaSecurity = PLAINTEXT
) -> list[dict[str, Any]]:
    """Every committed record of `topic` from the beginning (read_committed), as JSON."""
    return [loads(message.value()) for message in read_messages(broker, topic, timeout, security)]


def read_messages(
    broker: str, topic: str, timeout: float = 60.0, security: KafkaSecurity = PLAINTEXT
) -> list[Any]:
    """Every committed message of `topic` from the beginning (read_committed), in the order read: each
    partition's in offset order, the partitions interleaved."""
    consumer = committed_reader(broker, security)
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        at_end: set[int] = set()
        messages: list[Any] = []
        deadline = time.monotonic() + timeout
        while len(at_end) < len(partitions):
            assert time.monotonic() < deadline, f"{topic} not read to its end in {timeout:.0f}s"
            for message in consumer.consume(10_000, timeout=0.5):
                error = message.error()
                if error is None:
                    messages.append(message)
                elif error.code() == KafkaError._PARTITION_EOF:
                    at_end.add(message.partition())
                else:
                    raise AssertionError(f"reading {topic}: {error}")
        return messages
    finally:
        consumer.close()


def committed_reader(broker: str, security: KafkaSecurity, group: str | None = None) -> Consumer:
    return Consumer({
        "bootstrap.servers": broker, "group.id": group or f"reader-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False, "isolation.level": "read_committed", "enable.partition.eof": True,
        **librdkafka_options(security),
    })  # fmt: skip


def committed_everything(broker: str, group: str, topic: str, security: KafkaSecurity = PLAINTEXT) -> bool:
    """Whether the group has nothing left to read: from its committed offsets on, every partition of
    `topic` is at its end for a read_committed reader.

    Not "committed offset == end offset": a partition that ends in a transaction marker keeps its end
    one past the group's last committed record, since the marker is never handed to a consumer.
    """
    consumer = committed_reader(broker, security, group)
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        try:
            committed = consumer.committed([TopicPartition(topic, p) for p in partitions], timeout=10)
        except KafkaException:  # e.g. NOT_COORDINATOR while the group moves: ask again later
            return False
        if any(tp.offset < 0 for tp in committed if consumer.get_watermark_offsets(tp, timeout=10)[1] > 0):
            return False  # a partition with records the group never committed
        starts = [
            tp if tp.offset >= 0 else TopicPartition(topic, tp.partition, OFFSET_BEGINNING)
            for tp in committed
        ]
        consumer.assign(starts)
        at_end: set[int] = set()
        deadline = time.monotonic() + 10
        while len(at_end) < len(partitions) and time.monotonic() < deadline:
            for message in consumer.consume(100, timeout=0.5):
                error = message.error()
                if error is None:
                    return False  # a committed record the group has not committed past
                if error.code() == KafkaError._PARTITION_EOF:
                    at_end.add(message.partition())
        return len(at_end) == len(partitions)
    finally:
        consumer.close()


def wait_until(predicate: Any, timeout: float, what: str, interval: float = 1.0) -> None:
    """Poll `predicate` until true; fail naming `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


@dataclass
class Worker:
    """One `tollgate serve processor` subprocess."""

    process: subprocess.Popen[bytes]
    log_path: Path
    metrics_port: int

    def exports(self, name: str, **labels: str) -> bool:
        """Whether the worker's /metrics holds a sample of `name` with `labels`."""
        text = httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).text
        return any(
            sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        )

    def metric(self, name: str, **labels: str) -> float:
        """One sample from the worker's /metrics (0 when absent)."""
        try:
            text = httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).text
        except httpx.TransportError:
            return 0.0  # not listening yet
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                    return float(sample.value)
        return 0.0

    def wait_ready(self, timeout: float = 90.0) -> None:
        """Wait until the worker caught up with the agreements and started its agent."""
        wait_until(
            lambda: "processor ready" in self.log() or self.process.poll() is not None,
            timeout,
            "the worker to start",
        )
        assert self.process.poll() is None, self.log()[-3000:]

    def kill(self) -> None:
        """kill -9: no shutdown hook runs."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        """SIGTERM and wait for the graceful shutdown."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        """The worker's log so far."""
        return self.log_path.read_text(errors="replace")


@dataclass
class Workers:
    """Starts workers for one test and stops every one of them by pid."""

    broker: str
    topics: Topics
    workdir: Path
    app_id: str = field(default_factory=lambda: f"tollgate-processor-{uuid.uuid4().hex[:10]}")
    started: list[Worker] = field(default_factory=list)
    # Variables every worker of this set gets (TLS/SASL, small bounds), before `start(extra=...)`.
    env: dict[str, str] = field(default_factory=dict)
    security: KafkaSecurity = PLAINTEXT

    def start(self, name: str, extra: dict[str, str] | None = None) -> Worker:
        """Start a worker subprocess in the test's consumer group."""
        port = free_port()
        env = {
            **os.environ,
            **self.topics.env(),
            "TOLLGATE_KAFKA_BOOTSTRAP": self.broker,
            "TOLLGATE_PROCESSOR_APP_ID": self.app_id,
            "TOLLGATE_PROCESSOR_METRICS_PORT": str(port),
            "TOLLGATE_PROCESSOR_DATA_DIR": str(self.data_dir(name)),
            # The proofs read the billable topic soon after the calls: flush usage every second.
            "TOLLGATE_PROCESSOR_USAGE_FLUSH_SECONDS": "1",
            # The proofs place their faults by committed progress (`wait_counted`), which 1 s catch-up
            # checkpoints would step over: equal to the commit interval, catching up is off.
            # test_processor_catch_up.py turns it back on.
            "TOLLGATE_PROCESSOR_CATCH_UP_COMMIT_INTERVAL_SECONDS": str(COMMIT_INTERVAL_SECONDS),
            **self.env,
            **(extra or {}),
        }
        log_path = self.workdir / f"{name}.log"
        with log_path.open("ab") as log_file:
            process = subprocess.Popen(
                [sys.executable, "-m", "services.cli", "serve", "processor"],
                cwd=ROOT,
                env=env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        worker = Worker(process, log_path, port)
        self.started.append(worker)
        return worker

    def data_dir(self, name: str) -> Path:
        """The local state directory of the worker called `name` (a restart under that name reuses it)."""
        return self.workdir / name

    def wait_drained(self, timeout: float = 180.0) -> None:
        """Wait until the group committed every input offset (outputs and state are acked by then), no
        running worker holds usage buckets not yet sent as billable deltas, and the group stage committed
        its internal topic (the licensee groups' alerts come from there, after the input's)."""
        group_topic = core_topics.group_usage(self.app_id)
        wait_until(
            lambda: committed_everything(self.broker, self.app_id, self.topics.input, self.security)
            and not any(w.metric("tollgate_processor_open_usage_partitions") for w in self.running())
            and committed_everything(self.broker, self.app_id, group_topic, self.security),
            timeout,
            "the input and group topics to be fully committed and the usage billed",
        )

    def running(self) -> list[Worker]:
        """The workers whose process is alive."""
        return [w for w in self.started if w.process.poll() is None]

    def wait_members(self, count: int, timeout: float = 90.0) -> None:
        """Wait until the group is stable with `count` members, each assigned some input partition."""
        wait_until(
            lambda: members_sharing(self.broker, self.app_id, self.topics.input, self.security) == count,
            timeout,
            f"{count} workers to share the input partitions",
            interval=0.5,
        )

    def drain_supervised(self, worker: Worker, name: str, timeout: float = 180.0) -> list[Worker]:
        """`wait_drained`, starting the worker `name` again whenever it exits, as its supervisor
        (systemd, Kubernetes) would; return every incarnation. An exit commits nothing, so a run
        with restarts must still give the undisturbed result."""
        running = [worker]

        def drained() -> bool:
            if running[-1].process.poll() is not None:
                running.append(self.start(name))
            return committed_everything(self.broker, self.app_id, self.topics.input, self.security)

        wait_until(drained, timeout, "the input topic to be fully committed")
        return running

    def run_solo(self) -> Worker:
        """Start one worker, wait until it committed the whole input topic, and stop it."""
        worker = self.start("solo")
        try:
            self.wait_drained()
        finally:
            self.stop_all()
        return worker

    def stop_all(self) -> None:
        """Stop every worker still running."""
        for worker in self.started:
            worker.stop()


def summary(alerts: list[dict[str, Any]], billable: list[dict[str, Any]]) -> dict[str, Any]:
    """What two runs must agree on: distinct alert ids, calls and records billed per licensee and usage
    bucket (a delta's usage_id depends on when its flush happened; what it adds up to does not), and
    no usage_id seen twice."""
    ids = [event["data"]["usage_id"] for event in billable]
    assert len(ids) == len(set(ids)), "a billable delta was delivered twice"
    billed: dict[tuple[str, str], list[int]] = {}
    records: Counter[str] = Counter()
    for event in billable:
        data = event["data"]
        held = billed.setdefault((data["licensee_id"], usage.bucket_of(data)), [0, 0])
        held[0] += data["calls"]
        held[1] += data["records"]
        records[data["licensee_id"]] += data["records"]
    return {"alert_ids": {a["data"]["alert_id"] for a in alerts}, "billed": billed, "records": dict(records)}


class _Keys(dict[str, Any]):
    """One licensee's keyed state for the expectation: nothing in it expires (the calls are checked to
    lie inside the horizon), so a plain dict is the store."""

    def apply(self, writes: Iterable[Write]) -> None:
        self.update((w.key, w.value) for w in writes)


def expected(
    calls: Iterable[ApiCall], agreements: Iterable[Agreement], policy: Policy | None = None
) -> dict[str, Any]:
    """`summary()` of an undisturbed run, from the pure domain (`decide`) over `calls` in their order.

    Alert ids are deterministic (rule, licensee, window, level) and the billed calls and records per
    usage bucket are exact, so a real run must show exactly these. Each call must be counted or a
    duplicate: a late one would make the answer depend on partitioning, so the expectation refuses it.
    """
    known = {a.licensee_id: a for a in agreements}
    states: dict[str, _Keys] = {}
    groups: dict[str, _Keys] = {}
    stream_time: float | None = None
    now = datetime.now(UTC)
    alert_ids: set[str] = set()
    billed: dict[tuple[str, str], list[int]] = {}
    records: Counter[str] = Counter()
    for call in calls:
        state = states.setdefault(call.licensee_id, _Keys())
        agreement = known.get(call.licensee_id)
        decision = decide(call, state, stream_time, agreement, now, policy or Policy())
        assert decision.kind in (COUNTED, DUPLICATE), f"{call.event_id} is {decision.kind}"
        stream_time = max(stream_time or decision.event_time, decision.event_time)
        state.apply(decision.writes)
        alert_ids |= {a.alert_id for a in decision.alerts}
        if decision.kind == COUNTED:
            alert_ids |= _group_alert_ids(call, agreement, known, groups, now)
            held = billed.setdefault((call.licensee_id, usage.bucket_id(call, agreement)), [0, 0])
            held[0] += 1
            held[1] += call.records
            records[call.licensee_id] += call.records
    return {"alert_ids": alert_ids, "billed": billed, "records": dict(records)}


def _group_alert_ids(
    call: ApiCall, agreement: Agreement | None, known: dict[str, Agreement], groups: dict[str, _Keys],
    now: datetime,
) -> set[str]:
    """The ids of the group alerts a member's counted call raises in the group stage (none without a
    group). Group alert ids do not depend on the order member calls reach the stage, only on the sum."""
    member = group_call(call, agreement)
    if member is None:
        return set()
    state = groups.setdefault(member.group_id, _Keys())
    decision = decide_group(member, state, known.get(member.group_id), now, 0.0)
    state.apply(decision.writes)
    return {a.alert_id for a in decision.alerts}


def demo_agreements() -> list[Agreement]:
    """demo/agreements.yaml."""
    return load_agreements(AGREEMENTS_FILE)


def expected_demo_alert_ids() -> set[str]:
    """The alert ids of an undisturbed run of the demo calls."""
    from services.demo.scenario import demo_calls

    return set(expected(demo_calls(), demo_agreements())["alert_ids"])


def clone_agreement(base: Agreement, licensee_id: str, **limits: Any) -> Agreement:
    """`base` under another licensee id, with some limits replaced."""
    raw = {**base.raw, "licensee_id": licensee_id, "name": f"{licensee_id} (test)"}
    raw["limits"] = {**raw["limits"], **limits}
    return parse_agreement(raw)


def publish(
    broker: str, topics: Topics, agreements: Sequence[Agreement], security: KafkaSecurity = PLAINTEXT
) -> None:
    """Put agreements on the test's agreements topic (acks=all)."""
    publish_agreements(broker, agreements, topics.agreements, security=security)


def calls_of(
    licensee: str, count: int, start: datetime, every: timedelta, first: int = 0, records: int = 10,
    app: str = "pebble-app",
) -> list[ApiCall]:  # fmt: skip
    """`count` commercial calls of `licensee`, ids `<licensee>-<n>` from `first`, one every `every`."""
    return [
        ApiCall(
            event_id=f"{licensee}-{n:07d}", source=f"gateway-{licensee}", time=start + (n - first) * every,
            licensee_id=licensee, app_id=app, endpoint="/2/tweets/search/all", method="GET", status=200,
            records=records, bytes=records * 900, org_id="reader-1", org_type="commercial",
        )
        for n in range(first, first + count)
    ]  # fmt: skip


def counted(worker: Worker) -> float:
    """How many calls the worker counted (committed checkpoints only)."""
    return worker.metric("tollgate_processor_events_total", outcome="counted")


def wait_counted(worker: Worker, at_least: int, timeout: float = 120.0) -> None:
    """Wait until `worker` has counted at least `at_least` calls: a fault placed by progress."""
    wait_until(
        lambda: counted(worker) >= at_least or worker.process.poll() is not None,
        timeout,
        f"the worker to count {at_least} calls",
        interval=0.1,
    )
    assert worker.process.poll() is None, worker.log()[-3000:]


@dataclass
class MidStream:
    """A worker that has counted 1,500 of the demo calls plus 3,000 calls of a clone of pebble."""

    calls: list[ApiCall]
    agreements: list[Agreement]
    workers: Workers
    worker: Worker


def mid_stream_run(bulk: int = 0) -> tuple[list[ApiCall], list[Agreement]]:
    """The fault proofs' calls (the demo's and 3,000 of a seventh licensee over its cap), in event-time
    order, with their agreements; `bulk` more calls of an eighth licensee far under its cap."""
    pebble = next(a for a in demo_agreements() if a.licensee_id == "pebble")
    agreements = [*demo_agreements(), clone_agreement(pebble, "pebble-6", calls_per_month=2500)]
    extra = calls_of("pebble-6", 3000, datetime(2026, 10, 2, tzinfo=UTC), timedelta(minutes=9))
    if bulk:
        agreements.append(clone_agreement(pebble, "pebble-bulk", calls_per_month=1_000_000))
        extra += calls_of("pebble-bulk", bulk, datetime(2026, 10, 3, tzinfo=UTC), timedelta(seconds=5))
    from services.demo.scenario import demo_calls

    return sorted([*demo_calls(), *extra], key=lambda c: (c.time, c.source, c.event_id)), agreements


def start_mid_stream(broker: str, topics: Topics, workdir: Path, name: str = "solo") -> MidStream:
    """Publish, produce and start a worker; return once it is mid-stream (1,500 counted)."""
    calls, agreements = mid_stream_run()
    publish(broker, topics, agreements)
    produce(broker, topics.input, calls)
    workers = Workers(broker, topics, workdir)
    worker = workers.start(name)
    try:
        wait_counted(worker, 1500)
    except BaseException:
        workers.stop_all()
        raise
    return MidStream(calls, agreements, workers, worker)
