"""Agreement versions per licensee: the one in force at a call's event time judges the call."""

from __future__ import annotations

import threading
from datetime import datetime

from services.core.agreements import Agreement


class Versions:
    """licensee_id -> its agreements read so far, one per `effective_from` (the latest read wins)."""

    def __init__(self) -> None:
        self._by_licensee: dict[str, dict[datetime, Agreement]] = {}
        # licensee_id -> its versions by effective_from, sorted when one is put, not on every call
        self._ordered: dict[str, tuple[Agreement, ...]] = {}
        self._lock = threading.Lock()

    def put(self, agreement: Agreement) -> None:
        """Add or replace the version starting at `agreement.effective_from`."""
        with self._lock:
            versions = dict(self._by_licensee.get(agreement.licensee_id, {}))
            versions[agreement.effective_from] = agreement
            self._by_licensee[agreement.licensee_id] = versions
            self._ordered[agreement.licensee_id] = tuple(a for _, a in sorted(versions.items()))

    def drop(self, licensee_id: str) -> None:
        """Forget a licensee (a tombstone on the compacted topic)."""
        with self._lock:
            self._by_licensee.pop(licensee_id, None)
            self._ordered.pop(licensee_id, None)

    def in_force(self, licensee_id: str, at: datetime) -> Agreement | None:
        """The version active at `at`; else the latest one (its dates then say `agreement.missing`)."""
        ordered = self._ordered.get(licensee_id)
        if not ordered:
            return None
        for agreement in reversed(ordered):
            if agreement.is_active(at):
                return agreement
        return ordered[-1]

    def __len__(self) -> int:
        return len(self._by_licensee)
