"""The faust app: a thin agent that decodes, applies the pure domain, and sends.

Nothing is created at import time: `bootstrap(settings)` builds the app, its topics, table and agent.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, cast

import faust

from services.core.clock import Clock, SystemClock
from services.core.events import ApiCall, dumps, loads
from services.processor.agreements_view import AgreementsView
from services.processor.codec import Invalid, Source, dead_letter, decode_call
from services.processor.domain.state import LicenseeState
from services.processor.domain.step import COUNTED, REPLAYED, Outcome, Position, apply
from services.processor.durability import DurableTable, guard_commits
from services.processor.metrics import ProcessorMetrics
from services.processor.settings import ProcessorSettings

log = logging.getLogger(__name__)
TABLE_NAME = "licensees"


def bootstrap(
    settings: ProcessorSettings, metrics: ProcessorMetrics | None = None, clock: Clock | None = None
) -> faust.App:
    """Build the processor's faust app (no connection is made until a worker starts it)."""
    app = faust.App(
        settings.app_id,
        broker=f"kafka://{settings.kafka_bootstrap}",
        store="memory://",
        datadir=str(settings.data_dir),
        web_enabled=False,
        topic_partitions=settings.partitions,
        topic_disable_leader=True,
        Table=DurableTable,
        producer_acks=-1,
        # Commit often: a crash replays at most this much, and replays re-send their outputs.
        broker_commit_interval=1.0,
        consumer_auto_offset_reset="earliest",
        table_standby_replicas=0,
    )
    pipeline = Pipeline(
        settings,
        app,
        metrics or ProcessorMetrics(settings.metrics_max_licensees),
        clock or SystemClock(),
        AgreementsView(settings.kafka_bootstrap, settings.agreements_topic),
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

    def declare(self) -> None:
        """Declare topics, the per-licensee table, the agreements task and the agent."""
        s, app = self.settings, self.app
        self.calls = self._raw_topic(s.input_topic)
        self.alerts = self._raw_topic(s.alerts_topic)
        self.billable = self._raw_topic(s.billable_topic)
        self.dlq = self._raw_topic(s.dlq_topic)
        self.table = cast(
            DurableTable, app.Table(TABLE_NAME, partitions=s.partitions, key_type=str, value_type=bytes)
        )
        self._cache: dict[str, tuple[bytes, LicenseeState]] = {}
        app.task(self.agreements.run)
        app.agent(self.calls, name="process-calls")(self.process)

    def _raw_topic(self, name: str) -> faust.TopicT:
        return self.app.topic(
            name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
        )

    async def process(self, stream: Any) -> None:
        """The agent: wait for every agreement, then handle each call in order."""
        await self.agreements.wait_ready(self.settings.agreements_timeout_seconds)
        guard_commits(self.app, self.table)
        async for event in stream.events():
            await self.handle(event.message)

    async def handle(self, message: Any) -> None:
        """Decode one message, apply it, send what it produced."""
        source = Source(message.topic, message.partition, message.offset, message.key)
        self._observe_lag(message)
        decoded = decode_call(message.value)
        if isinstance(decoded, ApiCall) and (message.key or b"") != decoded.licensee_id.encode():
            # State lives in the partition of the licensee's key; a call keyed otherwise would split it.
            decoded = Invalid(
                "invalid: key is not the licensee_id",
                [{"field": "(key)", "reason": "must equal data.licensee_id"}],
            )
        if isinstance(decoded, Invalid):
            log.warning(
                "dead-lettering %s[%d]@%d: %s %s",
                source.topic,
                source.partition,
                source.offset,
                decoded.reason,
                decoded.problems[:3],
            )
            await self._dead_letter(source, decoded.reason, message.value, decoded.problems)
            self.metrics.events.labels("invalid").inc()
            return
        self._observe_event_time(decoded, message.timestamp)
        await self._apply(decoded, source, message.value)

    async def _apply(self, call: ApiCall, source: Source, payload: bytes) -> None:
        state = self._state(call.licensee_id)
        agreement = self.agreements.get(call.licensee_id)
        try:
            outcome = apply(
                state,
                call,
                Position(source.partition, source.offset),
                agreement,
                self.clock.now(),
                self.settings.policy(),
            )
        except Exception:
            # The cached object may be half-changed: drop it so the table's value is read again.
            self._cache.pop(call.licensee_id, None)
            raise
        if outcome.kind != REPLAYED:
            self._save(state)
        await self._emit(call, source, payload, outcome)
        self.metrics.events.labels(outcome.kind).inc()
        if outcome.kind == COUNTED:
            self.metrics.counted(state, call.records, agreement)
            for envelope in outcome.alerts:
                self.metrics.fired(call.licensee_id, envelope["data"]["rule"], envelope["data"]["severity"])

    async def _emit(self, call: ApiCall, source: Source, payload: bytes, outcome: Outcome) -> None:
        key = call.licensee_id.encode()
        # Every send is tracked: the commit of this offset waits for its ack (see durability.py).
        if outcome.usage is not None:
            self.table.track(await self.billable.send(key=key, value=dumps(outcome.usage.to_cloudevent())))
        for envelope in outcome.alerts:
            log.info(
                "alert %s %s %s", envelope["data"]["rule"], call.licensee_id, envelope["data"]["subject"]
            )
            self.table.track(await self.alerts.send(key=key, value=dumps(envelope)))
        if outcome.reason:
            await self._dead_letter(source, outcome.reason, payload)

    async def _dead_letter(
        self, source: Source, reason: str, payload: bytes | None, found: list[dict[str, str]] | None = None
    ) -> None:
        record = dead_letter(source, reason, payload, self.clock.now(), found)
        self.table.track(await self.dlq.send(key=source.key, value=record))

    def _state(self, licensee_id: str) -> LicenseeState:
        stored = self.table.get(licensee_id)
        if stored is None:
            return LicenseeState(licensee_id)
        cached = self._cache.get(licensee_id)
        # The cache is valid only while the table still holds the very value we wrote (not a recovered one).
        if cached is not None and cached[0] is stored:
            return cached[1]
        return LicenseeState.from_dict(loads(stored))

    def _save(self, state: LicenseeState) -> None:
        value = dumps(state.to_dict())
        self.table[state.licensee_id] = value
        self._cache[state.licensee_id] = (value, state)

    def _observe_lag(self, message: Any) -> None:
        if message.timestamp:
            self.metrics.lag.set(max(0.0, time.time() - message.timestamp))

    def _observe_event_time(self, call: ApiCall, kafka_timestamp: float | None) -> None:
        if kafka_timestamp:
            self.metrics.event_lag.observe(max(0.0, kafka_timestamp - call.time.timestamp()))
