"""The real billable stream the processor emits: aggregated deltas of a day, flush by flush (deterministic).

200 licensees whose call volumes follow Zipf (s = 1): the largest makes 2.2 million calls a day (65 million
a month, issue 13's licensee), 13 million in all. Each licensee has 8 apps and 10 requester orgs, both
Zipf-skewed too; its last org is a government one, notified before the day for every other licensee. Every
FLUSH_SECONDS (300 s) each licensee's open buckets (UTC hour, app, org, notice) leave as one delta each,
with the event-time span of the flush window and the input offsets its calls took on the licensee's
partition, exactly as services/processor/domain/usage.py builds them.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from services.core.events import UsageRecorded

DAY = datetime(2026, 9, 14, tzinfo=UTC)
FLUSH_SECONDS = 300
LICENSEES, APPS, ORGS = 200, 8, 10
LARGEST_PER_DAY = 2_200_000
INPUT_TOPIC, INPUT_PARTITIONS = "tollgate.api-calls.v1", 6
_NAMESPACE = uuid.UUID("9d4c8e2a-61f3-4b7e-8a0c-5e2f1d3b7a64")


def _zipf(count: int) -> list[float]:
    weights = [1 / rank for rank in range(1, count + 1)]
    total = sum(weights)
    return [w / total for w in weights]


@dataclass(frozen=True, slots=True)
class Shape:
    """The stream's sizes: licensees, apps and orgs per licensee, calls a day of the largest licensee."""

    licensees: int = LICENSEES
    apps: int = APPS
    orgs: int = ORGS
    largest_per_day: int = LARGEST_PER_DAY
    flush_seconds: int = FLUSH_SECONDS
    start: datetime = DAY  # the first flush window's start

    @property
    def calls_per_day(self) -> int:
        """All licensees' calls a day."""
        return round(self.largest_per_day / _zipf(self.licensees)[0])


class BillableStream:
    """Deltas flush by flush; `calls` counts the calls of the deltas handed out so far."""

    def __init__(self, shape: Shape = Shape(), seed: int = 13) -> None:
        self.shape = shape
        self.calls = 0
        self._rng = random.Random(seed)  # noqa: S311 - a reproducible workload, not security
        apps, orgs = enumerate(_zipf(shape.apps)), list(enumerate(_zipf(shape.orgs)))
        self._combos = [(a, o, wa * wo) for a, wa in apps for o, wo in orgs]
        self._positions = [0] * INPUT_PARTITIONS
        per_flush = shape.calls_per_day * shape.flush_seconds / 86_400
        self._rates = [per_flush * w for w in _zipf(shape.licensees)]

    def deltas(self, limit: int) -> Iterator[UsageRecorded]:
        """The first `limit` deltas of the day (the day repeats if it is not enough)."""
        handed, flush = 0, 0
        while handed < limit:
            for delta in self._flush(flush):
                if handed == limit:
                    return
                self.calls += delta.calls
                handed += 1
                yield delta
            flush += 1

    def flushes(self, count: int) -> Iterator[UsageRecorded]:
        """Every delta of the first `count` flush windows (a month: its seconds / flush_seconds)."""
        for flush in range(count):
            for delta in self._flush(flush):
                self.calls += delta.calls
                yield delta

    def _flush(self, flush: int) -> Iterator[UsageRecorded]:
        """Every licensee's deltas of one flush window."""
        start = self.shape.start + timedelta(seconds=flush * self.shape.flush_seconds)
        for licensee, rate in enumerate(self._rates):
            for app, org, weight in self._combos:
                expected = rate * weight
                calls = int(expected) + (self._rng.random() < expected - int(expected))
                if calls:
                    yield self._delta(flush, start, licensee, app, org, calls)

    def _delta(
        self, flush: int, start: datetime, licensee: int, app: int, org: int, calls: int
    ) -> UsageRecorded:
        partition = licensee % INPUT_PARTITIONS
        first = self._positions[partition]
        self._positions[partition] += calls
        hour = start.replace(minute=0, second=0, microsecond=0)
        government = org == self.shape.orgs - 1
        span = timedelta(seconds=self.shape.flush_seconds * (calls - 1) / calls)
        lic = f"lic-{licensee:03d}"
        return UsageRecorded(
            usage_id=str(uuid.uuid5(_NAMESPACE, f"{lic}|{flush}|{app}|{org}")), licensee_id=lic,
            app_id=f"app-{app}", period_start=hour, period_end=hour + timedelta(hours=1), calls=calls,
            records=calls * 25, org_id=f"{lic}-org-{org}",
            org_type="government" if government else "commercial",
            first_event_at=start, last_event_at=start + span,
            government_notified=(licensee % 2 == 1) if government else None,
            reference=(INPUT_TOPIC, partition, first, first + calls - 1),
        )  # fmt: skip
