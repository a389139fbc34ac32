"""The publisher port: hand records to the log and return only once every one is durably acknowledged."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from services.ingest.errors import PublishFailed
from services.ingest.validation import Record


class Publisher(Protocol):
    """Port: where accepted events go."""

    async def publish(self, records: Sequence[Record]) -> None:
        """Return after every record is acknowledged; raise PublishFailed otherwise (some may still land)."""
        ...

    async def ready(self) -> bool:
        """Whether the log is reachable right now."""
        ...

    def close(self) -> None:
        """Flush what is buffered and release connections."""
        ...


class InMemoryPublisher:
    """Records kept in a list; `available = False` simulates a broker outage. For unit tests."""

    def __init__(self) -> None:
        self.records: list[Record] = []
        self.available = True
        self.closed = False

    async def publish(self, records: Sequence[Record]) -> None:
        """Append every record, or fail them all when unavailable."""
        if not self.available:
            raise PublishFailed("broker unavailable (simulated)")
        self.records.extend(records)

    async def ready(self) -> bool:
        """Ready while available."""
        return self.available

    def close(self) -> None:
        """Mark closed."""
        self.closed = True
