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

from quixstreams import Application
from quixstreams.kafka.configuration import ConnectionConfig

from services.core.clock import Clock, SystemClock
from services.core.security import librdkafka_options
from services.processor import pipeline
from services.processor.agreements_view import AgreementsView
from services.processor.batch import Known
from services.processor.health import Health
from services.processor.metrics import ProcessorMetrics
from services.processor.rocksdb_options import MemtableBloomOptions
from services.processor.settings import ProcessorSettings
from services.processor.sweep_floor import install as sweep_from_floor
from services.processor.ticker import Ticker, TickSender
from services.processor.violations import ViolationsView

log = logging.getLogger(__name__)


class _Application(Application):
    """quix's Application, telling the ticker and the gauges which input partitions this worker gained
    or lost."""

    ticker: Ticker | None = None
    metrics: ProcessorMetrics | None = None
    known: Known | None = None
    input_topic = ""

    def _on_assign(self, _: Any, topic_partitions: list[Any]) -> None:
        super()._on_assign(_, topic_partitions)
        gained = [tp.partition for tp in topic_partitions if tp.topic == self.input_topic]
        if self.ticker is not None:
            self.ticker.assigned(gained)
        if self.metrics is not None:
            self.metrics.regained(gained)
        if self.known is not None:
            self.known.forget()

    def _on_revoke(self, _: Any, topic_partitions: list[Any]) -> None:
        super()._on_revoke(_, topic_partitions)
        self._forget(topic_partitions)

    def _on_lost(self, _: Any, topic_partitions: list[Any]) -> None:
        super()._on_lost(_, topic_partitions)
        self._forget(topic_partitions)

    def _forget(self, topic_partitions: list[Any]) -> None:
        lost = [tp.partition for tp in topic_partitions if tp.topic == self.input_topic]
        if self.known is not None:
            self.known.forget()
        if self.ticker is not None:
            self.ticker.revoked(lost)
        if self.metrics is not None:
            self.metrics.forget_partitions(lost)


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
    ticker: Ticker | None = None
    ticks: TickSender | None = None

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
        if self.ticker is not None:
            self.ticker.start()
        try:
            self.app.run()
        finally:
            self.health.ready.clear()
            if self.ticker is not None:
                self.ticker.stop()
            if self.ticks is not None:
                self.ticks.close()
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
    app = _Application(
        broker_address=connection(settings),
        consumer_group=settings.app_id,
        processing_guarantee="exactly-once",
        auto_offset_reset="earliest",
        commit_interval=settings.commit_interval_seconds,
        state_dir=str(settings.data_dir),
        rocksdb_options=MemtableBloomOptions(),
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
    ticks = TickSender(connection(settings).as_librdkafka_dict(), settings.input_topic)
    every = settings.usage_flush_seconds
    now = clock.now
    ticker = Ticker(
        ticks.send, ticks.partitions, lambda: now().timestamp(), min(5.0, every / 2), max(every, 60.0)
    )
    app.ticker, app.metrics, app.input_topic = ticker, metrics, settings.input_topic
    metrics.open_usage_from(ticker.open_partitions)
    app.known = Known(pipeline.remember)
    pipeline.build(app, settings, metrics, agreements, clock, ticker, app.known)
    if settings.sweep_from_floor:
        log.debug("TTL sweep from a floor on %d stores", sweep_from_floor(app._state_manager.stores))
    return Worker(app, agreements, health or Health(), settings, violations, topics_ready, ticker, ticks)
