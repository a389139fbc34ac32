"""The faust app: a thin agent that takes micro-batches, lets `batch.Planner` apply them, writes and sends.

Nothing is created at import time: `bootstrap(settings)` builds the app, its topics, table and agent.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, cast

import faust

from services.core.clock import Clock, SystemClock
from services.core.security import faust_credentials
from services.processor.agreements_view import AgreementsView
from services.processor.batch import Plan, Planner, StateCache, Topics
from services.processor.domain.step import COUNTED
from services.processor.durability import DurableTable, guard_commits
from services.processor.health import Health
from services.processor.metrics import LagTracker, ProcessorMetrics
from services.processor.offsets import InputGate
from services.processor.offsets import install as install_gate
from services.processor.probe import KafkaHoleProbe
from services.processor.settings import ProcessorSettings
from services.processor.stall import PartitionView, StallDetector

log = logging.getLogger(__name__)
TABLE_NAME = "licensees"


def bootstrap(
    settings: ProcessorSettings,
    metrics: ProcessorMetrics | None = None,
    clock: Clock | None = None,
    health: Health | None = None,
) -> faust.App:
    """Build the processor's faust app (no connection is made until a worker starts it)."""
    app = faust.App(
        settings.app_id,
        broker=f"kafka://{settings.kafka_bootstrap}",
        broker_credentials=faust_credentials(settings.kafka_security),
        store="memory://",
        datadir=str(settings.data_dir),
        web_enabled=False,
        topic_partitions=settings.partitions,
        topic_disable_leader=True,
        Table=DurableTable,
        producer_acks=-1,
        # Outputs and changelog go out in few large requests; acks=all still holds for each record.
        producer_linger_ms=settings.producer_linger_ms,
        producer_max_batch_size=256 * 1024,
        producer_compression_type=settings.producer_compression,
        # Commit often: a crash replays at most this much, and replays re-send their outputs.
        broker_commit_interval=1.0,
        # A worker that dies without leaving the group (kill -9, lost host) holds its partitions until
        # the session expires; faust's default is 60 s. Heartbeats come from the consumer thread.
        broker_session_timeout=settings.session_timeout_seconds,
        broker_heartbeat_interval=settings.heartbeat_interval_seconds,
        consumer_auto_offset_reset="earliest",
        table_standby_replicas=0,
    )
    pipeline = Pipeline(
        settings,
        app,
        metrics or ProcessorMetrics(settings.metrics_max_licensees),
        clock or SystemClock(),
        AgreementsView(settings.kafka_bootstrap, settings.agreements_topic, settings.kafka_security),
        health or Health(),
    )
    pipeline.declare()
    return app


@dataclass
class Pipeline:
    """The app's topics, table and agent, wired together."""

    settings: ProcessorSettings
    app: faust.App
    metrics: ProcessorMetrics
    clock: Clock
    agreements: AgreementsView
    health: Health
    lag: LagTracker = field(default_factory=LagTracker)
    stalls: StallDetector = field(default_factory=StallDetector)

    def declare(self) -> None:
        """Declare topics, the per-licensee table, the agreements task and the agent."""
        s, app = self.settings, self.app
        self.calls = self._raw_topic(s.input_topic)
        for name in (s.alerts_topic, s.billable_topic, s.dlq_topic):
            self._raw_topic(name)
        self.table = cast(
            DurableTable, app.Table(TABLE_NAME, partitions=s.partitions, key_type=str, value_type=bytes)
        )
        self.cache = StateCache(self.table)
        probe = KafkaHoleProbe(s.kafka_bootstrap, s.kafka_security.aiokafka())
        self.gate = InputGate(app, s.input_topic, probe)
        install_gate(app, self.gate)
        self.planner = Planner(
            self.cache, self.agreements.get, s.policy(), Topics(s.alerts_topic, s.billable_topic, s.dlq_topic)
        )
        self.lag.pending = self._pending
        self.metrics.lag_from(self.lag)
        self.health.failed = self.table.failure
        app.task(self.agreements.run)
        app.timer(s.stall_check_seconds, name="processor-stall-check")(self.check_stalls)
        app.agent(self.calls, name="process-calls")(self.process)
        # cast: mode types receivers too narrowly for a bound coroutine method
        app.on_rebalance_complete.connect(cast(Any, self._on_rebalanced))

    def _raw_topic(self, name: str) -> faust.TopicT:
        return self.app.topic(
            name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
        )

    async def process(self, stream: Any) -> None:
        """The agent: handle micro-batches in order, the first one once every agreement is known."""
        # The stream is iterated at once and the first batch waits for the agreements: waiting before
        # `take_events` made a worker taking over partitions skip records more often (README, 7.).
        ready = asyncio.ensure_future(self._get_ready())
        s = self.settings
        try:
            # take_events acks a batch's events only when the next batch is asked for, i.e. after
            # `handle` queued the batch's state and outputs; the commit guard then waits for their acks.
            async for events in stream.take_events(s.batch_max, within=s.batch_within_seconds):
                await asyncio.shield(ready)
                await self.handle(events)
        finally:
            ready.cancel()

    async def _get_ready(self) -> None:
        await self.agreements.wait_ready(self.settings.agreements_timeout_seconds)
        guard_commits(self.app, self.table)
        self.show_all()
        self.health.ready.set()

    async def handle(self, events: list[Any]) -> None:
        """Apply one batch, write each touched licensee's state once, send the outputs."""
        events, admission = await self.gate.admit(events)
        if not events:
            return
        try:
            plan = self.planner.plan([e.message for e in events], self.clock.now())
            for write in plan.writes:
                self.table.put(write.licensee_id, write.value, write.partition)
            send = self.app.producer.send
            for out in plan.sends:
                self.table.track(await send(out.topic, out.key, out.value, None, None, None))
        except BaseException as exc:
            # Nothing of a batch stopped half-way may be committed: the commit guard refuses from now on.
            self.table.poison(exc)
            raise
        # Every write and send of the batch is tracked: the commit guard waits for them before a commit.
        self.gate.advance(admission)
        self._observe(events, plan)
        await self._backpressure()

    async def _backpressure(self) -> None:
        # The next batch waits while too many records are unacknowledged, so memory stays bounded.
        while self.table.unacked > self.settings.max_unacked:
            await asyncio.sleep(0.005)

    def _observe(self, events: list[Any], plan: Plan) -> None:
        metrics = self.metrics
        for kind, count in plan.outcomes.items():
            metrics.outcome(kind, count)
        for applied in plan.applied:
            if applied.outcome.kind == COUNTED:
                call = applied.call
                metrics.counted(call.licensee_id, call.records)
                for envelope in applied.outcome.alerts:
                    data = envelope["data"]
                    metrics.fired(call.licensee_id, data["rule"], data["severity"])
                if applied.timestamp:
                    metrics.event_lag.observe(max(0.0, applied.timestamp - call.time.timestamp()))
        for licensee_id, state in plan.states.items():
            metrics.show(state, self.agreements.get(licensee_id))
        for event in events:
            message = event.message
            self.lag.processed(message.partition, message.offset, message.timestamp)

    def show_all(self) -> None:
        """Set every licensee's gauges from the table (after a restart they would be missing)."""
        for licensee_id in list(self.table.keys()):
            self.metrics.show(self.cache.get(licensee_id), self.agreements.get(licensee_id))

    async def _on_rebalanced(self, sender: Any, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        # Sent once the table is recovered for the new assignment. Before the agent is ready the
        # agreements may be unknown; the agent shows the table itself when it starts.
        self.stalls.reset()
        # A new assignment: each input partition starts again at the group's committed offset.
        self.gate.reset()
        if self.health.ready.is_set():
            self.show_all()

    async def check_stalls(self) -> None:
        """Seek an input partition back whose position stopped short of its end (see stall.py)."""
        app, table = self.app, self.table
        if not self.health.ready.is_set() or app.rebalancing or table.unacked or table.failure():
            return  # not started, moving partitions, waiting for acks, or must restart anyway
        consumer = cast(Any, app.consumer)
        tps = {tp.partition: tp for tp in consumer.assignment() if tp.topic == self.settings.input_topic}
        unknown = [tp for tp in tps.values() if consumer.highwater(tp) is None]
        ends = dict(await consumer.highwaters(*unknown)) if unknown else {}
        sequencer = self.gate.sequencer
        views = [
            PartitionView(
                partition,
                # Before its first record the position is unknown: faust's view of the committed offset.
                _first(sequencer.position(partition), consumer._committed_offset.get(tp)),
                consumer.highwater(tp) if tp not in ends else ends[tp],
                sequencer.position(partition),
            )
            for partition, tp in sorted(tps.items())
        ]
        for partition in self.stalls.observe(views):
            await self.gate.unstick(tps[partition])

    def _pending(self, next_offsets: dict[int, int]) -> bool:
        consumer = self.app.consumer
        for tp in consumer.assignment():
            if tp.topic != self.settings.input_topic or tp.partition not in next_offsets:
                continue
            if (consumer.highwater(tp) or 0) > next_offsets[tp.partition]:
                return True
        return False


def _first(*values: int | None) -> int | None:
    return next((v for v in values if v is not None), None)
