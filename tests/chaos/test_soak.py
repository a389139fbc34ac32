"""A short soak: sustained ingest at a fixed rate through the whole stack, then bounded catch-up, flat
memory, and exact counts. TOLLGATE_SOAK_SECONDS (default 20) and TOLLGATE_SOAK_RATE (events a second,
default 100) make it longer or harder."""

from __future__ import annotations

import os
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from support import (
    Verdict,
    billed_buckets,
    bucket_gaps,
    chaos_agreements,
    deployment,
    ledger_usage,
    record_result,
    simulate,
    soak,
    wait_until_settled,
)

from services.core.events import ApiCall
from services.demo.observe import metric_sum

SOAK_SECONDS = float(os.environ.get("TOLLGATE_SOAK_SECONDS", "20"))
SOAK_RATE = float(os.environ.get("TOLLGATE_SOAK_RATE", "100"))
CATCH_UP_SECONDS = 60.0  # after the last 202, the processor and the ledger have everything within this
RSS_GROWTH_MIB = 48.0  # allowed growth of each service between the middle and the end of the soak ...
RSS_GROWTH_RATIO = 1.25  # ... on top of this factor

AGREEMENTS = [a for a in chaos_agreements() if a.licensee_id != "oldco"]
LICENSEES = [a.licensee_id for a in AGREEMENTS]

pytestmark = [pytest.mark.chaos, pytest.mark.e2e, pytest.mark.slow]


def soak_call(n: int, now: datetime) -> ApiCall:
    """The n-th soak call: licensees in turn, event time a moment ago, a unique id."""
    licensee = LICENSEES[n % len(LICENSEES)]
    return ApiCall(
        event_id=f"soak-{n:09d}", source=f"gateway-{licensee}", time=now - timedelta(seconds=1),
        licensee_id=licensee, app_id="pebble-app" if licensee.startswith("pebble") else "omni-search",
        endpoint="/2/tweets/search/all", method="GET", status=200, records=1 + n % 7, bytes=900,
        org_id=f"soak-org-{n % 11}", org_type="commercial",
    )


@pytest.mark.timeout(int(SOAK_SECONDS) + 300)
def test_a_sustained_load_keeps_lag_bounded_memory_flat_and_counts_exact() -> None:
    """A fixed rate for TOLLGATE_SOAK_SECONDS: catch-up within a bound, flat memory, each event once."""
    sources_of = [soak_call(i, datetime.now(UTC)) for i in range(len(LICENSEES))]
    with deployment("soak", sources_of, AGREEMENTS) as deployed:
        run = soak(deployed, SOAK_SECONDS, SOAK_RATE, soak_call)
        catch_up = wait_until_settled(deployed, len(run.sent), timeout=CATCH_UP_SECONDS + 60)
        ledger = ledger_usage(deployed.info.database_url)
        address = deployed.service("processor").metrics_address
        counted = {k: int(metric_sum(address, "tollgate_usage_calls_total", licensee=k)) for k in LICENSEES}
        alive = deployed.alive()

    calls: Counter[str] = Counter(call.licensee_id for call in run.sent)
    records: Counter[str] = Counter()
    for call in run.sent:
        records[call.licensee_id] += call.records
    # What the pure domain bills per usage bucket for the calls sent (each of them counts).
    buckets = billed_buckets(simulate(run.sent, AGREEMENTS, now=datetime.now(UTC)))
    lost, doubled = bucket_gaps(buckets, ledger.buckets)
    doubled += sum(n - 1 for n in ledger.repeated_ids.values())
    doubled += sum(max(0, counted[k] - calls[k]) for k in calls)
    memory = ", ".join(f"{k} {run.rss_mid.get(k)}->{run.rss_end[k]} MiB" for k in sorted(run.rss_end))
    note = (f"rate={run.rate:.0f}/s, behind at end={run.behind_at_end}, catch-up={catch_up:.1f}s, "
            f"RSS mid->end: {memory}")
    record_result(f"none: soak {SOAK_SECONDS:.0f} s at {SOAK_RATE:.0f}/s", len(run.sent),
                  len(run.report.accepted), Verdict(lost, doubled, []), run.seconds + catch_up, note)

    assert run.report.errors == []
    assert (lost, doubled) == (0, 0)
    assert ledger.usage == {k: (calls[k], records[k]) for k in calls}
    assert ledger.buckets == buckets
    assert ledger.repeated_ids == {}
    assert counted == dict(calls)
    assert all(alive.values()), alive
    assert run.rate >= 0.9 * SOAK_RATE, "the senders could not keep the rate"
    assert catch_up <= CATCH_UP_SECONDS
    for key, mid in run.rss_mid.items():
        end = run.rss_end[key]
        assert end <= mid * RSS_GROWTH_RATIO + RSS_GROWTH_MIB, f"{key} grew from {mid} to {end} MiB"
