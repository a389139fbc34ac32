"""The one-day run's traffic and its expectation: Zipf-skewed calls over one event-time day, duplicates,
late calls, agreements whose caps some licensees cross, and what the pure domain says they must give.

Event n's time rises through the day (n * 86,400 / calls seconds after midnight). Then:
- late: a share of calls carry a time 1 minute to 6 hours behind their place in the stream. They are
  within the processor's 7-day lateness, so they still count (and land in an earlier hour bucket);
- too late: a few calls near the stream's end carry a time 8 days before the day. Every partition's
  stream time is inside the day by then, so the processor sends them to the DLQ as late;
- duplicates: a share of the counted calls is sent again, 1,000 to 50,000 events later (another
  request, so ingest publishes both copies and the processor must drop the second).
The expectation feeds the distinct calls to `Simulation` (services/processor/domain/simulate.py) in
stream order. Its alert ids do not depend on the order across partitions (rule, licensee, window,
severity, subject), nor do its totals, since no counted call is near the lateness bound.
"""

from __future__ import annotations

import itertools
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from bench.e2e_bench import bench_agreements, licensee_name
from services.core.agreements import Agreement, parse_agreement
from services.core.events import ApiCall
from services.demo.scenario import OMNISOFT_APPS
from services.processor.domain.simulate import Simulation, by_licensee
from services.processor.domain.step import COUNTED, LATE

DAY_SECONDS = 86_400
LATE_BEHIND = (60.0, 6 * 3600.0)  # seconds behind the stream for a late (still counted) call
TOO_LATE_BEHIND = timedelta(days=8)  # past the 7-day lateness
# Cap profiles by licensee index mod 5: what share of its own day each cap is (10.0: never crossed).
CAP_PROFILES = (
    {"calls": 0.6, "records": 10.0, "minute": 10.0},  # calls: warning, breach and severe
    {"calls": 1.1, "records": 0.9, "minute": 10.0},  # calls: warning; records: warning and breach
    {"calls": 10.0, "records": 10.0, "minute": 0.8},  # rate.breach in its busiest minutes
    {"calls": 10.0, "records": 10.0, "minute": 10.0},  # within every cap
    {"calls": 10.0, "records": 10.0, "minute": 10.0},
)


@dataclass(frozen=True)
class DayPlan:
    """The size and shape of the day."""

    calls: int = 2_100_000
    licensees: int = 200
    zipf: float = 1.0
    duplicate_share: float = 0.02
    late_share: float = 0.01
    too_late: int = 20
    batch: int = 500
    seed: int = 14


@dataclass
class Day:
    """Everything the run sends and what it must find."""

    plan: DayPlan
    day_start: datetime
    agreements: list[Agreement]
    bodies: list[tuple[int, bytes]]
    sent: int = 0  # events posted, duplicates included
    duplicates: int = 0
    late: int = 0  # counted though behind the stream
    too_late: int = 0  # expected in the DLQ as late
    usage: dict[str, tuple[int, int]] = field(default_factory=dict)  # licensee -> (calls, records)
    alert_ids: frozenset[str] = frozenset()
    alert_rules: dict[str, int] = field(default_factory=dict)  # rule/severity -> alert ids expected


def zipf_licensees(plan: DayPlan, rng: random.Random) -> list[int]:
    """The licensee index of every call, licensee i weighted 1 / (i + 1) ** zipf."""
    cum = list(itertools.accumulate(1.0 / (i + 1) ** plan.zipf for i in range(plan.licensees)))
    return rng.choices(range(plan.licensees), cum_weights=cum, k=plan.calls)


def make_calls(plan: DayPlan, day_start: datetime, run_id: str) -> tuple[list[ApiCall], int, int]:
    """The distinct calls in stream order; with how many are late and too late."""
    rng = random.Random(plan.seed)  # noqa: S311 - a reproducible load, not a secret
    who = zipf_licensees(plan, rng)
    too_late_at = set(
        rng.sample(range(int(plan.calls * 0.95), plan.calls), min(plan.too_late, plan.calls // 20))
    )
    calls, late = [], 0
    step = DAY_SECONDS / plan.calls
    for n, lic in enumerate(who):
        offset = n * step
        if n in too_late_at:
            at = day_start - TOO_LATE_BEHIND + timedelta(seconds=offset)
        else:
            if rng.random() < plan.late_share:
                offset, late = max(0.0, offset - rng.uniform(*LATE_BEHIND)), late + 1
            at = day_start + timedelta(seconds=offset)
        records = 1 + rng.randrange(50)
        calls.append(
            ApiCall(
                event_id=f"{run_id}-{n}",
                source=f"bench-gateway-{lic % 16}",
                time=at,
                licensee_id=licensee_name(lic),
                app_id=OMNISOFT_APPS[n % len(OMNISOFT_APPS)],
                endpoint="/2/tweets/search/all",
                method="GET",
                status=200,
                records=records,
                bytes=records * 900,
                org_id=f"customer-{n % 97}",
                org_type="commercial",
            )
        )
    return calls, late, len(too_late_at)


def day_agreements(plan: DayPlan, calls: list[ApiCall], day_start: datetime) -> list[Agreement]:
    """One agreement per licensee with caps a profile's share of its own day (month = this day)."""
    totals: Counter[str] = Counter()
    records: Counter[str] = Counter()
    minutes: Counter[tuple[str, int]] = Counter()
    start = day_start.timestamp()
    for call in calls:
        if call.time >= day_start:
            totals[call.licensee_id] += 1
            records[call.licensee_id] += call.records
            minutes[(call.licensee_id, int((call.time.timestamp() - start) // 60))] += 1
    peak: Counter[str] = Counter()
    for (licensee, _), count in minutes.items():
        peak[licensee] = max(peak[licensee], count)
    made = []
    for index, template in enumerate(bench_agreements(plan.licensees)[-plan.licensees :]):
        profile, lic = CAP_PROFILES[index % len(CAP_PROFILES)], template.licensee_id
        limits = {
            **template.raw["limits"],
            "calls_per_month": max(1, int(totals[lic] * profile["calls"])),
            "records_per_month": max(1, int(records[lic] * profile["records"])),
            "calls_per_minute": max(1, int(peak[lic] * profile["minute"])),
        }
        made.append(parse_agreement({**template.raw, "limits": limits}))
    return made


def expectation(day: Day, calls: list[ApiCall]) -> None:
    """Fill `day` with the pure domain's totals and alert set for `calls` (distinct, in stream order)."""
    simulation = Simulation(by_licensee(day.agreements), datetime.now(UTC))
    kinds: dict[str, str] = {}
    for call in calls:
        kinds.update((a.alert_id, f"{a.rule}/{a.severity}") for a in simulation.feed(call).alerts)
    day.alert_rules = dict(Counter(kinds.values()))
    usage: dict[str, list[int]] = {}
    for (licensee, _bucket), (n, records) in simulation.billed.items():
        held = usage.setdefault(licensee, [0, 0])
        held[0] += n
        held[1] += records
    day.usage = {licensee: (n, r) for licensee, (n, r) in usage.items()}
    day.alert_ids = frozenset(simulation.alert_ids)
    if simulation.outcomes[COUNTED] + simulation.outcomes[LATE] != len(calls):
        raise AssertionError(f"the expectation has other outcomes: {dict(simulation.outcomes)}")
    if simulation.outcomes[LATE] != day.too_late:
        raise AssertionError(f"{simulation.outcomes[LATE]} late in the domain, {day.too_late} planned")


def batches(plan: DayPlan, calls: list[ApiCall], too_late: set[str]) -> tuple[list[tuple[int, bytes]], int]:
    """The request bodies in send order, duplicates placed 1,000 to 50,000 events after their original."""
    rng = random.Random(plan.seed + 1)  # noqa: S311 - a reproducible load, not a secret
    later: dict[int, list[dict[str, Any]]] = {}
    events: list[dict[str, Any]] = []
    duplicates = 0
    for n, call in enumerate(calls):
        event = call.to_cloudevent()
        events.append(event)
        if call.event_id not in too_late and rng.random() < plan.duplicate_share:
            later.setdefault(min(n + rng.randint(1_000, 50_000), len(calls) - 1), []).append(event)
            duplicates += 1
        events.extend(later.pop(n, ()))
    size = plan.batch
    bodies = [
        (len(chunk), orjson.dumps(chunk))
        for chunk in (events[i : i + size] for i in range(0, len(events), size))
    ]
    return bodies, duplicates


def make_day(plan: DayPlan, run_id: str, day_start: datetime | None = None) -> Day:
    """Generate the day (yesterday, UTC, unless given): calls, agreements, bodies and the expectation."""
    if day_start is None:
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        day_start = today - timedelta(days=1)
    calls, late, too_late = make_calls(plan, day_start, run_id)
    day = Day(plan, day_start, day_agreements(plan, calls, day_start), [], late=late, too_late=too_late)
    expectation(day, calls)
    late_ids = {c.event_id for c in calls if c.time < day_start}
    day.bodies, day.duplicates = batches(plan, calls, late_ids)
    day.sent = len(calls) + day.duplicates
    return day
