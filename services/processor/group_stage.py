"""The group stage: a second dataframe of the processor's quix app, keyed by licensee group.

A member's counted call (services/processor/handler.py) sends one `GroupCall` keyed by its group to the
internal topic `<app id>.group-usage.v1`, in the member's checkpoint transaction. This stage reads that
topic in the same app (`read_committed`, so only committed member calls arrive, each once), counts the
group's month in its own RocksDB store keyed by group (`domain/groups.py`) and emits the group's
`volume.*` alerts; its state, alerts and input offsets commit in one Kafka transaction, so a crash
re-reads nothing twice. The record timestamp is the call's event time, clamped like the input's.
Only licensees with a parent pay for this: one small record per counted call.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from quixstreams import Application
from quixstreams.models.topics import Topic, TopicConfig

from services.core.agreements import Agreement
from services.core.clock import Clock
from services.core.events import dumps, parse_time
from services.processor.domain.groups import GroupCall, decide_group, retention_seconds
from services.processor.domain.step import Policy
from services.processor.domain.store import Write
from services.processor.handler import Emit

log = logging.getLogger(__name__)


def group_timestamp(clock: Clock, max_lead_ms: int) -> Callable[[Any, Any, int, Any], int]:
    """The group call's event time in ms, clamped to [0, clock + lead] as the input's is (serdes.py)."""

    def extract(value: Any, headers: Any, timestamp: int, timestamp_type: Any) -> int:
        try:
            at = int(parse_time(value["time"]).timestamp() * 1000)
        except (KeyError, TypeError, ValueError, OverflowError):
            at = int(timestamp)  # not one of ours: the step skips it and touches no state
        return max(0, min(at, int(clock.now().timestamp() * 1000) + max_lead_ms))

    return extract


class GroupStage:
    """Turns one group call into the group's state writes and alerts."""

    def __init__(
        self,
        alerts_topic: str,
        group: Callable[[str, datetime], Agreement | None],
        clock: Clock,
        policy: Policy,
        fired: Callable[[str, str, str], None],
    ) -> None:
        self.alerts_topic, self.group, self.clock, self.fired = alerts_topic, group, clock, fired
        self.retention = retention_seconds(policy.max_age.total_seconds(), policy.max_lead.total_seconds())

    def step(self, value: Any, key: bytes | None, timestamp: int, headers: Any, state: Any) -> list[Emit]:
        """Count one member call in its group; the alerts to produce."""
        try:
            call = GroupCall.from_dict(value)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            # Only this app writes the topic; a foreign record is skipped rather than stopping the stage.
            log.error("skipping a record on the group topic that is no group call: %s", exc)
            return []
        group = self.group(call.group_id, call.time)
        decision = decide_group(call, state, group, self.clock.now(), self.retention)
        apply(state, decision.writes, timestamp)
        out = []
        for alert in decision.alerts:
            log.info("alert %s group %s %s", alert.rule, alert.licensee_id, alert.metric)
            self.fired(alert.licensee_id, alert.rule, alert.severity)
            out.append(Emit(self.alerts_topic, alert.licensee_id.encode(), dumps(alert.to_cloudevent())))
        return out


def group_records(
    in_force: Callable[[str, datetime], Agreement | None],
) -> Callable[[str, datetime], Agreement | None]:
    """A lookup of the group's own record in force at a time, from the agreements view's `get`-like
    `in_force` (the view keeps a group's record under its id like any licensee's)."""

    def lookup(group_id: str, at: datetime) -> Agreement | None:
        found = in_force(group_id, at)
        return found if found is not None and found.is_group else None

    return lookup


def apply(state: Any, writes: list[Write], timestamp_ms: int) -> None:
    """Write to quix's state, each value expiring at its event-time `expires_at` (at least 1 ms ahead)."""
    for write in writes:
        ttl = None
        if write.expires_at is not None:
            ttl = timedelta(milliseconds=max(1, int(write.expires_at * 1000) - timestamp_ms))
        state.set(write.key, write.value, ttl=ttl)


def group_topic(
    app: Application, name: str, like: Topic, serializer: Any, clock: Clock, max_lead_ms: int
) -> Topic:
    """The internal topic, made with the input topic's partitions (groups spread as licensees do);
    the member stage writes it with `serializer`, the group stage reads it as JSON."""
    broker = like.broker_config
    config = TopicConfig(num_partitions=broker.num_partitions, replication_factor=broker.replication_factor)
    return app.topic(
        name, key_deserializer="bytes", value_deserializer="json", key_serializer="bytes",
        value_serializer=serializer, config=config, timestamp_extractor=group_timestamp(clock, max_lead_ms),
    )  # fmt: skip


def build(app: Application, topic: Topic, stage: GroupStage, alerts: Topic, clock: Clock) -> None:
    """Add the group stage's dataframe to `app`: group calls in, group alerts out."""
    sdf = app.dataframe(topic)
    sdf = sdf.apply(stage.step, stateful=True, metadata=True, expand=True)
    sdf = sdf.set_timestamp(lambda value, key, timestamp, headers: int(clock.now().timestamp() * 1000))
    sdf.to_topic(alerts, key=lambda value: value.key)
