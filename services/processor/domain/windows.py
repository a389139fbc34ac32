"""Event-time windows: calendar months (UTC, `services.core.month.Month`), minutes and hours."""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta

from services.core.month import Month

MINUTE = 60
HOUR = 3600


def month_key(at: datetime) -> str:
    """The calendar month (UTC) of an instant, as `YYYY-MM`."""
    return str(Month.of(at))


@functools.lru_cache(maxsize=1024)
def month_bounds(key: str) -> tuple[datetime, datetime]:
    """Start (inclusive) and end (exclusive) of the month `YYYY-MM`."""
    month = Month.parse(key)
    return month.start, month.end


@functools.lru_cache(maxsize=4096)
def month_key_of_day(day: int) -> str:
    """The calendar month (UTC) of day `day` (days since the epoch), as `YYYY-MM`."""
    return month_key(from_epoch(day * 86_400))


def month_window(at: datetime) -> tuple[datetime, datetime]:
    """The calendar month (UTC) holding `at`."""
    return month_bounds(month_key(at))


def epoch(at: datetime) -> float:
    """Seconds since the Unix epoch."""
    return at.timestamp()


def from_epoch(seconds: float) -> datetime:
    """An aware UTC datetime from epoch seconds."""
    return datetime.fromtimestamp(seconds, UTC)


def minute_index(at: datetime) -> int:
    """The UTC minute holding `at`, as whole minutes since the epoch."""
    return int(at.timestamp() // MINUTE)


@functools.lru_cache(maxsize=4096)
def minute_window(index: int) -> tuple[datetime, datetime]:
    """Start and end of the minute `index`."""
    start = from_epoch(index * MINUTE)
    return start, start + timedelta(minutes=1)


def hour_window(at: datetime) -> tuple[datetime, datetime]:
    """The UTC hour holding `at`: the billable bucket."""
    start = from_epoch((at.timestamp() // HOUR) * HOUR)
    return start, start + timedelta(hours=1)
