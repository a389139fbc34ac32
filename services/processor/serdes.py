"""How quix-streams reads the processor's input and writes its outputs."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from quixstreams.models.serializers import Deserializer, Serializer

from services.core.clock import Clock
from services.core.events import ApiCall
from services.processor.codec import TICKED, Incoming, Invalid, read_message
from services.processor.handler import Emit
from services.processor.metrics import LagClock
from services.processor.ticker import TICK

log = logging.getLogger(__name__)


class ReadCall(Deserializer):
    """Input values -> Incoming; never raises, so a bad record is dead-lettered, not fatal."""

    def __call__(self, value: bytes, ctx: Any) -> Incoming:
        if value == TICK:
            return Incoming(value, TICKED)
        try:
            return read_message(value)
        except Exception as exc:  # an exception here would stop the worker on every restart
            log.warning("unreadable input record: %s", exc)
            problem = {"field": "(event)", "reason": str(exc)[:200]}
            return Incoming(value or b"", Invalid("invalid: unreadable", [problem]))


class EmitValue(Serializer):
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
