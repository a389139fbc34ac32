"""Reasonable volume: each UTC day of a licensee against its trailing baseline (rule volume.anomaly).

Pure. A counted call adds itself to its day (key `y:<YYYY-MM-DD>`, by event time): calls, records, the
same per app, and the day's baseline. The baseline is fixed once, when the day's first call is counted:
the median calls and the median records of the days among the previous `BASELINE_DAYS` that had traffic
(each still a `y:` key), or none with fewer than `MIN_DAYS` such days. So a call reads and writes one key;
only a day's first call reads the `BASELINE_DAYS` before it. A day that starts before the days behind it
are complete (a replay out of order, late calls of earlier days) keeps the baseline it started with.

A day key expires `BASELINE_DAYS` + 1 days plus the lateness after the day's end: every call that is not
late still finds its own day, and a day's first call finds the whole of its trailing window.
"""

from __future__ import annotations

import functools
import math
import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from services.core.events import ApiCall
from services.processor.domain.store import StateReader, Write

DAY_PREFIX = "y:"
DAY = 86_400
BASELINE_DAYS = 28
MIN_DAYS = 7
TOP_APPS = 3
_KEEP = (BASELINE_DAYS + 1) * DAY
_EPOCH = date(1970, 1, 1)
# A day's value: [calls, records, {app: [calls, records]}, baseline or None].
# A baseline: [median calls, median records, traffic days it was taken over].
Baseline = list[float]


@dataclass(slots=True)  # not frozen: a frozen dataclass costs more to build, and one is built per call
class DayUsage:
    """A licensee's UTC day after one more counted call, and the baseline it is judged against."""

    index: int  # days since the epoch
    calls: int
    records: int
    apps: Mapping[str, list[int]]
    baseline: Baseline | None

    @property
    def window(self) -> tuple[datetime, datetime]:
        """Start (inclusive) and end (exclusive) of the day."""
        return day_window(self.index)

    def top_apps(self, metric: str) -> list[dict[str, Any]]:
        """The day's `TOP_APPS` apps with the most of `metric` (calls or records), ties by app id."""
        column = 0 if metric == "calls" else 1
        ranked = sorted(self.apps.items(), key=lambda item: (-item[1][column], item[0]))
        return [{"app_id": app, "calls": n[0], "records": n[1]} for app, n in ranked[:TOP_APPS]]


@functools.lru_cache(maxsize=4096)
def day_key(index: int) -> str:
    """The state key of day `index` (days since the epoch): `y:YYYY-MM-DD`."""
    return DAY_PREFIX + (_EPOCH + timedelta(days=index)).isoformat()


@functools.lru_cache(maxsize=1024)
def day_window(index: int) -> tuple[datetime, datetime]:
    """Start and end of day `index`."""
    start = datetime.fromtimestamp(index * DAY, UTC)
    return start, start + timedelta(days=1)


def baseline(state: StateReader, index: int) -> Baseline | None:
    """The medians of the traffic days among the `BASELINE_DAYS` before day `index`, if at least
    `MIN_DAYS` had traffic."""
    days = [state.get(day_key(index - back)) for back in range(1, BASELINE_DAYS + 1)]
    found = [day for day in days if day is not None and day[0] > 0]
    if len(found) < MIN_DAYS:
        return None
    calls = statistics.median(day[0] for day in found)
    records = statistics.median(day[1] for day in found)
    return [calls, records, len(found)]


def count(
    writes: list[Write], state: StateReader, call: ApiCall, event_time: float, lateness: float
) -> DayUsage:
    """Add `call` to its day (appending the write to `writes`) and return the day as it now stands."""
    index = int(event_time // DAY)
    key = day_key(index)
    found = state.get(key)
    if found is None:
        calls, records, apps, base = 0, 0, {}, baseline(state, index)
    else:
        calls, records, apps, base = found
    app = apps.get(call.app_id) or (0, 0)
    apps = {**apps, call.app_id: [app[0] + 1, app[1] + call.records]}
    calls, records = int(calls) + 1, int(records) + call.records
    writes.append(Write(key, [calls, records, apps, base], (index + 1) * DAY + _KEEP + lateness + 2.0))
    return DayUsage(index, calls, records, apps, base)


def within(baseline_value: float, factor: float) -> int:
    """The most a day may hold and stay within `factor` times the baseline (it fires above this)."""
    return math.floor(baseline_value * factor + 1e-9)
