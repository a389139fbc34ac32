"""Api-call events shared by the ingest tests of every tier (tests/conftest.py puts tests/ on sys.path)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from services.core.clock import FixedClock

# The clock of an ingest app under test: its events are of October 2026, within the maximum age of this day.
INGEST_NOW = FixedClock(datetime(2026, 11, 1, tzinfo=UTC))


def api_call_event(event_id: str, *, source: str, licensee: str, records: int, size: int) -> dict[str, Any]:
    """A valid `io.tollgate.api.call.v1` envelope: an `omni-search` GET by a commercial org in October."""
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": source,
        "type": "io.tollgate.api.call.v1",
        "time": "2026-10-15T10:00:00Z",
        "datacontenttype": "application/json",
        "data": {
            "licensee_id": licensee,
            "app_id": "omni-search",
            "endpoint": "/2/tweets/search/all",
            "method": "GET",
            "status": 200,
            "records": records,
            "bytes": size,
            "requester": {"org_id": "acme", "org_type": "commercial"},
        },
    }
