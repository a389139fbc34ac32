"""The demo scenario's traffic: deterministic, so tests can state the exact alerts and invoices.

October 2026 (UTC):
- omnisoft: 3,000 calls spread over eight registered apps, a burst of 150 calls inside one minute,
  40 calls from the unregistered app `omni-shadow`, 30 calls for `gov-intel-agency` (no notice) and
  20 for `gov-statistics-office` (notified in September); 25 records a call. 3,240 calls, 81,000 records.
- pebble: 300 calls of 10 records, under every cap.
- oldco: 50 calls of 5 records after its agreement ended on 2026-10-01.
- halcyon-news and halcyon-tv, two accounts of the licensee group `halcyon`: 300 calls of 10 records each,
  under each account's own cap of 400 calls, while their sum (600) passes the group's cap of 500.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from services.core.events import ApiCall

AGREEMENTS_FILE = Path(__file__).resolve().parents[2] / "demo" / "agreements.yaml"
MONTH_START = datetime(2026, 10, 1, tzinfo=UTC)
MONTH_SECONDS = 31 * 24 * 3600
BURST_START = datetime(2026, 10, 20, 10, 15, tzinfo=UTC)

OMNISOFT_APPS = (
    "omni-search", "omni-ads", "omni-news", "omni-assist",
    "omni-social", "omni-cloud", "omni-research", "omni-devtools",
)


def _call(licensee: str, n: int, at: datetime, app: str, records: int, org: str, org_type: str) -> ApiCall:
    return ApiCall(
        event_id=f"{licensee}-{n:06d}", source=f"gateway-{licensee}", time=at, licensee_id=licensee,
        app_id=app, endpoint="/2/tweets/search/all", method="GET", status=200, records=records,
        bytes=records * 900, org_id=org, org_type=org_type,
    )


def _spread(count: int, offset_seconds: int = 0) -> Iterator[datetime]:
    step = MONTH_SECONDS // count
    for i in range(count):
        yield MONTH_START + timedelta(seconds=offset_seconds + i * step)


def omnisoft_calls() -> list[ApiCall]:
    """Omnisoft: past its volume, one burst, an unregistered app and unnotified government use."""
    calls = [
        _call("omnisoft", i, at, OMNISOFT_APPS[i % 8], 25, f"customer-{i % 17}", "commercial")
        for i, at in enumerate(_spread(3000))
    ]
    n = len(calls)
    for i in range(150):
        calls.append(_call("omnisoft", n + i, BURST_START + timedelta(milliseconds=300 * i),
                           "omni-search", 25, "customer-burst", "commercial"))
    n = len(calls)
    calls += [_call("omnisoft", n + i, at, "omni-shadow", 25, "customer-shadow", "commercial")
              for i, at in enumerate(_spread(40, 101))]
    n = len(calls)
    calls += [_call("omnisoft", n + i, at, "omni-cloud", 25, "gov-intel-agency", "government")
              for i, at in enumerate(_spread(30, 203))]
    n = len(calls)
    calls += [_call("omnisoft", n + i, at, "omni-research", 25, "gov-statistics-office", "government")
              for i, at in enumerate(_spread(20, 307))]
    return calls


def pebble_calls() -> list[ApiCall]:
    """Pebble: the basic plan, well under its caps."""
    return [_call("pebble", i, at, "pebble-app", 10, f"reader-{i % 5}", "commercial")
            for i, at in enumerate(_spread(300, 11))]


def oldco_calls() -> list[ApiCall]:
    """Oldco: calls after its agreement ended."""
    return [_call("oldco", i, at, "oldco-archive", 5, "oldco-newsroom", "commercial")
            for i, at in enumerate(_spread(50, 13))]


def halcyon_calls() -> list[ApiCall]:
    """The Halcyon group: two accounts each under its own cap, together over the group's."""
    news = [_call("halcyon-news", i, at, "halcyon-newsdesk", 10, f"newsroom-{i % 3}", "commercial")
            for i, at in enumerate(_spread(300, 17))]
    tv = [_call("halcyon-tv", i, at, "halcyon-tv-trends", 10, f"channel-{i % 4}", "commercial")
          for i, at in enumerate(_spread(300, 19))]
    return news + tv


def demo_calls() -> list[ApiCall]:
    """Every call of the scenario, in event-time order (ties by id)."""
    calls = omnisoft_calls() + pebble_calls() + oldco_calls() + halcyon_calls()
    return sorted(calls, key=lambda c: (c.time, c.source, c.event_id))
