"""The ingest service's exceptions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.core.errors import TollgateError


class IngestError(TollgateError):
    """Root of every ingest error."""


class Refused(IngestError):
    """A request the service answers with a 4xx: `problems` are `{index, field, reason}`."""

    def __init__(
        self,
        status: int,
        problems: list[dict[str, Any]],
        headers: Mapping[str, str] | None = None,
        events: int = 0,
    ) -> None:
        self.status = status
        self.problems = problems
        self.headers = dict(headers or {})
        self.events = events
        first = problems[0] if problems else {}
        super().__init__(f"{status}: {first.get('field')}: {first.get('reason')}")


class PublishFailed(IngestError):
    """Kafka did not acknowledge every record in time; the caller should retry later."""
