"""The processor's quix-streams dataframe: one stateful step per input record, and the checkpoint hook.

Each record is decided against its checkpoint's `Batch` (batch.py); the alerts and dead letters it
yields are produced at once, inside the checkpoint's Kafka transaction. When the checkpoint commits,
the hook (flush.py) first closes due usage buckets as billable deltas and hands the held writes to
quix, which then produces the changelog and commits outputs, state and input offsets together.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from quixstreams import Application, message_context
from quixstreams.models.topics import Topic

from services.core import topics
from services.core.clock import Clock
from services.processor import checkpoint_pace, group_stage
from services.processor.agreements_view import AgreementsView
from services.processor.batch import Batch, Known
from services.processor.codec import TICKED, Incoming, Source, check_key, read_message
from services.processor.domain.dedupe import DEDUPE_PREFIX
from services.processor.flush import CheckpointHook, Open, UsageFlush
from services.processor.handler import Emit, Handler, Topics
from services.processor.metrics import LagClock, ProcessorMetrics
from services.processor.serdes import EmitValue, ReadCall, event_timestamp
from services.processor.settings import ProcessorSettings
from services.processor.state import LicenseeState, PartitionState
from services.processor.tally import Tally
from services.processor.ticker import Ticker


def build(
    app: Application,
    settings: ProcessorSettings,
    metrics: ProcessorMetrics,
    agreements: AgreementsView,
    clock: Clock,
    ticker: Ticker,
    known: Known,
) -> None:
    """Add the processor's dataframe and checkpoint hook to `app`."""
    lag = LagClock(lambda: clock.now().timestamp())
    metrics.lag_from(lag.seconds)
    calls = app.topic(
        settings.input_topic,
        key_deserializer="bytes",
        value_deserializer=ReadCall(),
        timestamp_extractor=event_timestamp(clock, int(settings.max_lead_seconds * 1000), lag),
    )
    group_calls = topics.group_usage(settings.app_id)
    names = Topics(settings.alerts_topic, settings.billable_topic, settings.dlq_topic, group_calls)
    outputs = {
        name: app.topic(name, key_serializer="bytes", value_serializer=EmitValue())
        for name in (names.alerts, names.billable, names.dlq)
    }
    max_lead_ms = int(settings.max_lead_seconds * 1000)
    groups = group_stage.group_topic(app, names.groups, calls, EmitValue(), clock, max_lead_ms)
    outputs[names.groups] = groups
    sdf = app.dataframe(calls)
    context = sdf.processing_context
    tally = Tally(metrics, lambda: _checkpoint(context))
    metrics.before_scrape(tally.settle)
    handler = Handler(
        names, settings.policy(), agreements.get, clock, metrics,
        lambda *inc: tally.add(_checkpoint(context), *inc),
    )  # fmt: skip
    # partition -> (the open checkpoint, its batch of the partition's store, the partition's state)
    batches: dict[int, tuple[object, Batch, PartitionState]] = {}

    def step(value: Incoming | None, key: bytes | None, timestamp: int, headers: Any) -> list[Emit]:
        ctx = message_context()
        checkpoint = context.checkpoint
        held = batches.get(ctx.partition)
        if held is None or held[0] is not checkpoint:
            # One store transaction per partition and checkpoint (quix caches it in the checkpoint).
            transaction = checkpoint.get_store_transaction(stream_id=sdf.stream_id, partition=ctx.partition)
            batch = Batch(transaction, known.of(ctx.partition), remember)
            held = batches[ctx.partition] = (checkpoint, batch, PartitionState(batch))
        incoming = value if value is not None else read_message(None)
        if incoming.call is TICKED:
            return []  # it only brings the partition into this checkpoint, whose hook flushes it
        incoming = check_key(incoming, key)
        source = Source(ctx.topic, ctx.partition, ctx.offset, key)
        licensee = LicenseeState(held[1], key or b"", timestamp)
        return handler.handle(incoming, source, timestamp / 1000, licensee, held[2])

    def opened() -> Iterator[Open]:
        return ((partition, held[1], held[2]) for partition, held in sorted(batches.items()))

    def produce(topic: str, key: bytes, value: bytes) -> None:
        context.producer.produce(topic=topic, key=key, value=value)

    pace = settings.pace()
    paced = checkpoint_pace.install(context, pace.interval, metrics.checkpoint_interval.set)

    def done() -> None:
        # Runs inside the commit, before quix opens the next checkpoint (checkpoint_pace.py).
        batches.clear()
        paced.requested = pace.next_interval(lag.seconds())

    usage_flush = UsageFlush(settings.input_topic, names.billable, settings.usage_flush_seconds, clock)
    context.sink_manager.register(CheckpointHook(opened, done, usage_flush, produce, ticker.due))
    # The store is registered as `stateful=True` would, but the step opens its own store transaction
    # once per partition and checkpoint: quix's stateful wrapper builds a State object per record.
    sdf.register_store()
    sdf = sdf.apply(step, metadata=True, expand=True)
    sdf = sdf.set_timestamp(lambda value, key, timestamp, headers: int(clock.now().timestamp() * 1000))
    sdf.to_topic(lambda value, key, timestamp, headers: _topic(outputs, value), key=lambda value: value.key)

    def fired(group: str, rule: str, severity: str) -> None:
        tally.add(_checkpoint(context), "fired", group, rule, severity)

    lookup = group_stage.group_records(agreements.versions.in_force)
    stage = group_stage.GroupStage(names.alerts, lookup, clock, settings.policy(), fired)
    group_stage.build(app, groups, stage, outputs[names.alerts], clock)


def remember(key: str) -> bool:
    """Whether a licensee's key is kept across checkpoints: window-scoped ones, not the dedupe entries
    (one per call, read once; and one read past its horizon must find what quix finds)."""
    return not key.startswith(DEDUPE_PREFIX)


def _topic(outputs: dict[str, Topic], value: Emit) -> Topic:
    return outputs[value.topic]


def _checkpoint(context: Any) -> object | None:
    try:
        return context.checkpoint
    except Exception:  # between checkpoints (none open): nothing is pending either
        return None
