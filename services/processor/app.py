"""The quix-streams app: one stateful step per input record, its outputs produced in the same transaction.

`processing_guarantee="exactly-once"`: each checkpoint (every `commit_interval` seconds) commits one
Kafka transaction holding the state changelog, the alerts, billable and DLQ records, and the input
offsets. After a crash the open transaction aborts and its records are re-read against the last
committed state, so nothing counts twice and nothing is lost. Nothing connects at import time:
`bootstrap(settings, ...)` builds the app; `Worker.run()` starts it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from quixstreams import Application, message_context
from quixstreams.kafka.configuration import ConnectionConfig
from quixstreams.models.serializers import Deserializer, Serializer

from services.core.clock import Clock, SystemClock
from services.core.events import ApiCall
from services.core.security import librdkafka_options
from services.processor.agreements_view import AgreementsView
from services.processor.codec import Incoming, Invalid, Source, check_key, read_message
from services.processor.handler import Emit, Handler, Topics
from services.processor.health import Health
from services.processor.metrics import LagClock, ProcessorMetrics
from services.processor.settings import ProcessorSettings
from services.processor.state import PARTITION_PREFIX, LicenseeState, PartitionState
from services.processor.tally import Tally
from services.processor.violations import ViolationsView

log = logging.getLogger(__name__)


class _ReadCall(Deserializer):
    """Input values -> Incoming; never raises, so a bad record is dead-lettered, not fatal."""

    def __call__(self, value: bytes, ctx: Any) -> Incoming:
        try:
            return read_message(value)
        except Exception as exc:  # an exception here would stop the worker on every restart
            log.warning("unreadable input record: %s", exc)
            problem = {"field": "(event)", "reason": str(exc)[:200]}
            return Incoming(value or b"", Invalid("invalid: unreadable", [problem]))


class _EmitValue(Serializer):
    """Outputs are built as bytes by the handler."""

    def __call__(self, value: Emit, ctx: Any) -> bytes:
        return value.value


def event_timestamp(
    clock: Clock, max_lead_ms: int, lag: LagClock | None = None
) -> Callable[[Any, Any, int, Any], int]:
    """The record timestamp quix stamps state with: the call's event time, clamped to [0, clock + lead].

    The clamp keeps any record, however hostile, from moving the partition's event-time high-water
    (which expires state) past the clock plus the allowed lead.
    """

    def extract(value: Any, headers: Any, timestamp: int, timestamp_type: Any) -> int:
        if lag is not None:
            lag.handled(timestamp)
        call = getattr(value, "call", None)
        try:
            at = int(call.time.timestamp() * 1000) if isinstance(call, ApiCall) else int(timestamp)
        except (OverflowError, ValueError, TypeError):
            at = 0  # not a time the state can use: it touches no state anyway (dead-lettered)
        return max(0, min(at, int(clock.now().timestamp() * 1000) + max_lead_ms))

    return extract


@dataclass
class Worker:
    """A built processor: the quix app and what `run` must start around it."""

    app: Application
    agreements: AgreementsView
    health: Health
    settings: ProcessorSettings
    violations: ViolationsView | None = None
    # Waits until the worker's topics answer (see readiness.py); None skips the wait.
    topics_ready: Callable[[], object] | None = None

    def run(self) -> None:
        """Read the agreements to their end, then process until stopped (SIGTERM/SIGINT)."""
        if self.topics_ready is not None:
            self.topics_ready()
        self.agreements.start()
        if self.violations is not None:
            self.violations.start()
        self.agreements.wait_ready(self.settings.agreements_timeout_seconds)
        self.health.ready.set()
        log.info("processor ready: agreements caught up, consuming %s", self.settings.input_topic)
        try:
            self.app.run()
        finally:
            self.health.ready.clear()
            self.agreements.stop()
            if self.violations is not None:
                self.violations.stop()

    def stop(self) -> None:
        """Ask the app to stop after its current record (it commits its checkpoint first)."""
        self.app.stop()


def connection(settings: ProcessorSettings) -> ConnectionConfig:
    """The broker address with the TLS/SASL options (used by quix's consumer, producer and admin)."""
    options = {k.replace(".", "_"): v for k, v in librdkafka_options(settings.kafka_security).items()}
    return ConnectionConfig.model_validate({"bootstrap_servers": settings.kafka_bootstrap, **options})


def bootstrap(
    settings: ProcessorSettings,
    metrics: ProcessorMetrics,
    agreements: AgreementsView,
    clock: Clock | None = None,
    health: Health | None = None,
    violations: ViolationsView | None = None,
    topics_ready: Callable[[], object] | None = None,
) -> Worker:
    """Build the processor's quix app (no connection is made until `Worker.run`)."""
    clock = clock or SystemClock()
    app = Application(
        broker_address=connection(settings),
        consumer_group=settings.app_id,
        processing_guarantee="exactly-once",
        auto_offset_reset="earliest",
        commit_interval=settings.commit_interval_seconds,
        state_dir=str(settings.data_dir),
        loglevel=None,
        consumer_extra_config={
            "isolation.level": "read_committed",
            "session.timeout.ms": int(settings.session_timeout_seconds * 1000),
            "heartbeat.interval.ms": int(settings.heartbeat_interval_seconds * 1000),
        },
        producer_extra_config={
            "linger.ms": settings.producer_linger_ms,
            "compression.type": settings.producer_compression or "none",
            # A killed worker's open transaction blocks its partitions' committed offsets until the
            # coordinator aborts it; librdkafka's 60 s default made the successor's assignment time out.
            "transaction.timeout.ms": int(settings.transaction_timeout_seconds * 1000),
        },
    )
    _pipeline(app, settings, metrics, agreements, clock)
    return Worker(app, agreements, health or Health(), settings, violations, topics_ready)


def _pipeline(
    app: Application,
    settings: ProcessorSettings,
    metrics: ProcessorMetrics,
    agreements: AgreementsView,
    clock: Clock,
) -> None:
    policy = settings.policy()
    lead_ms = int(policy.max_lead.total_seconds() * 1000)
    lag = LagClock(lambda: clock.now().timestamp())
    metrics.lag_from(lag.seconds)
    calls = app.topic(
        settings.input_topic,
        key_deserializer="bytes",
        value_deserializer=_ReadCall(),
        timestamp_extractor=event_timestamp(clock, lead_ms, lag),
    )
    names = Topics(settings.alerts_topic, settings.billable_topic, settings.dlq_topic)
    outputs = {
        name: app.topic(name, key_serializer="bytes", value_serializer=_EmitValue())
        for name in (names.alerts, names.billable, names.dlq)
    }
    sdf = app.dataframe(calls)
    context = sdf.processing_context

    def checkpoint() -> object | None:
        try:
            return context.checkpoint
        except Exception:  # between checkpoints (none open): nothing is pending either
            return None

    tally = Tally(metrics, checkpoint)
    metrics.before_scrape(tally.settle)
    handler = Handler(
        names, policy, agreements.get, clock, metrics, lambda *inc: tally.add(checkpoint(), *inc)
    )

    clocks: dict[int, tuple[object, PartitionState, dict[tuple[Any, str], Any]]] = {}

    def step(
        value: Incoming | None, key: bytes | None, timestamp: int, headers: Any, state: Any
    ) -> list[Emit]:
        ctx = message_context()
        transaction = context.checkpoint.get_store_transaction(
            stream_id=sdf.stream_id, partition=ctx.partition
        )
        cached = clocks.get(ctx.partition)
        if cached is None or cached[0] is not transaction:
            # A new checkpoint: read the stream time its transaction holds, start an empty read cache.
            stream = PartitionState(transaction.as_state(PARTITION_PREFIX))
            cached = clocks[ctx.partition] = (transaction, stream, {})
        incoming = check_key(value if value is not None else read_message(None), key)
        return handler.handle(
            incoming,
            Source(ctx.topic, ctx.partition, ctx.offset, key),
            timestamp / 1000,
            LicenseeState(state, cached[2], key),
            cached[1],
        )

    sdf = sdf.apply(step, stateful=True, metadata=True, expand=True)
    sdf = sdf.set_timestamp(lambda value, key, timestamp, headers: int(clock.now().timestamp() * 1000))
    sdf.to_topic(lambda value, key, timestamp, headers: outputs[value.topic], key=lambda value: value.key)
