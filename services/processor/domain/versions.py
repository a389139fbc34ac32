"""Agreement versions per licensee: the one in force at a call's event time judges the call."""

from __future__ import annotations

import threading
from datetime import datetime

from services.core.agreements import Agreement


class Versions:
    """licensee_id -> its agreements read so far, one per `effective_from` (the latest read wins)."""

    def __init__(self) -> None:
        self._by_licensee: dict[str, dict[datetime, Agreement]] = {}
        self._lock = threading.Lock()

    def put(self, agreement: Agreement) -> None:
        """Add or replace the version starting at `agreement.effective_from`."""
        with self._lock:
            versions = dict(self._by_licensee.get(agreement.licensee_id, {}))
            versions[agreement.effective_from] = agreement
            self._by_licensee[agreement.licensee_id] = versions

    def drop(self, licensee_id: str) -> None:
        """Forget a licensee (a tombstone on the compacted topic)."""
        with self._lock:
            self._by_licensee.pop(licensee_id, None)

    def in_force(self, licensee_id: str, at: datetime) -> Agreement | None:
        """The version active at `at`; else the latest one (its dates then say `agreement.missing`)."""
        versions = self._by_licensee.get(licensee_id)
        if not versions:
            return None
        ordered = sorted(versions.items())
        active = [a for _, a in ordered if a.is_active(at)]
        return active[-1] if active else ordered[-1][1]

    def __len__(self) -> int:
        return len(self._by_licensee)
