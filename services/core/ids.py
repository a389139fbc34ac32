"""Deterministic identifiers, so that replays produce the same ids and sinks can dedupe."""

from __future__ import annotations

import uuid
from datetime import datetime

# A fixed namespace: changing it would change every id ever issued.
_NAMESPACE = uuid.UUID("6f1d4a2e-3c57-5b8e-9a40-7d3f0c1b2e99")


def event_key(source: str, event_id: str) -> str:
    """The identity of an event: CloudEvents says `source` + `id` is unique."""
    return f"{source}\x1f{event_id}"


def usage_id(source: str, event_id: str) -> str:
    """The billable usage id of one counted event: the same event always yields the same id."""
    return str(uuid.uuid5(_NAMESPACE, "usage\x1f" + event_key(source, event_id)))


def alert_id(rule: str, licensee_id: str, window_start: datetime, severity: str, subject: str = "") -> str:
    """The id of an alert: one per rule, licensee, window, level and subject (metric, app or org)."""
    parts = ("alert", rule, licensee_id, subject, window_start.isoformat(), severity)
    return str(uuid.uuid5(_NAMESPACE, "\x1f".join(parts)))
