"""Event-time windows: calendar months (UTC), minutes and hours."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from services.processor.domain import windows

T = datetime


@pytest.mark.parametrize(
    ("at", "key", "start", "end"),
    [
        (T(2026, 10, 1, tzinfo=UTC), "2026-10", T(2026, 10, 1, tzinfo=UTC), T(2026, 11, 1, tzinfo=UTC)),
        (
            T(2026, 10, 31, 23, 59, 59, 999999, tzinfo=UTC),
            "2026-10",
            T(2026, 10, 1, tzinfo=UTC),
            T(2026, 11, 1, tzinfo=UTC),
        ),
        (T(2026, 12, 31, 12, tzinfo=UTC), "2026-12", T(2026, 12, 1, tzinfo=UTC), T(2027, 1, 1, tzinfo=UTC)),
        (T(2028, 2, 29, tzinfo=UTC), "2028-02", T(2028, 2, 1, tzinfo=UTC), T(2028, 3, 1, tzinfo=UTC)),
        # 01:00 on 1 November in UTC+02:00 is still October in UTC.
        (
            T(2026, 11, 1, 1, tzinfo=timezone(timedelta(hours=2))),
            "2026-10",
            T(2026, 10, 1, tzinfo=UTC),
            T(2026, 11, 1, tzinfo=UTC),
        ),
    ],
)
def test_a_call_belongs_to_the_utc_calendar_month_of_its_event_time(
    at: T, key: str, start: T, end: T
) -> None:
    assert windows.month_key(at) == key
    assert windows.month_window(at) == (start, end)


@pytest.mark.parametrize(
    ("at", "minute_start", "hour_start"),
    [
        (
            T(2026, 10, 20, 10, 15, tzinfo=UTC),
            T(2026, 10, 20, 10, 15, tzinfo=UTC),
            T(2026, 10, 20, 10, tzinfo=UTC),
        ),
        (
            T(2026, 10, 20, 10, 15, 59, 999000, tzinfo=UTC),
            T(2026, 10, 20, 10, 15, tzinfo=UTC),
            T(2026, 10, 20, 10, tzinfo=UTC),
        ),
        (
            T(2026, 10, 20, 10, 59, 59, tzinfo=UTC),
            T(2026, 10, 20, 10, 59, tzinfo=UTC),
            T(2026, 10, 20, 10, tzinfo=UTC),
        ),
    ],
)
def test_minutes_and_hours_are_utc_buckets_that_start_on_the_boundary(
    at: T, minute_start: T, hour_start: T
) -> None:
    assert windows.minute_window(windows.minute_index(at)) == (
        minute_start,
        minute_start + timedelta(minutes=1),
    )
    assert windows.hour_window(at) == (hour_start, hour_start + timedelta(hours=1))
