"""Pure maths of the processor bench: workload shape, drain rate, percentiles, lag verdict, medians."""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from bench.e2e_bench import linear_slope

LAG_TOLERANCE = 0.05  # the lag may grow by at most this share of the offered rate per second
DRAIN_AFTER_LOAD_S = 5.0  # once sending stops, a sustained load's lag is gone within this
SEND_SHARE = 0.95  # the bench's background producer must reach this share of its target rate


def zipf_weights(licensees: int, top_share: float) -> list[float]:
    """Zipf weights 1/rank^s, normalised, with s chosen so the first licensee has `top_share`."""
    if licensees < 1 or not 0 < top_share <= 1:
        raise ValueError("need at least one licensee and 0 < top_share <= 1")
    if licensees == 1:
        return [1.0]
    low, high = 0.0, 20.0  # the top share grows with s: 1/n at s=0, about 1 at s=20
    for _ in range(60):
        s = (low + high) / 2
        raw = [1 / (rank**s) for rank in range(1, licensees + 1)]
        if raw[0] / sum(raw) < top_share:
            low = s
        else:
            high = s
    total = sum(raw)
    return [w / total for w in raw]


def split(total: int, weights: Sequence[float]) -> list[int]:
    """`total` items split by `weights` (largest remainder: the counts sum to `total`)."""
    exact = [total * w / sum(weights) for w in weights]
    counts = [int(x) for x in exact]
    by_remainder = sorted(range(len(exact)), key=lambda i: exact[i] - counts[i], reverse=True)
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    return counts


def spread(count: int, start: float, seconds: float) -> list[float]:
    """`count` event times spaced evenly over [start, start + seconds)."""
    step = seconds / count if count else 0.0
    return [start + i * step for i in range(count)]


def drain_rate(events: int, first_count: float, first_seen: float, committed_at: float) -> float | None:
    """Events/s between the first observed handled record and the committed end; None if undefined."""
    remaining, seconds = events - first_count, committed_at - first_seen
    if remaining <= 0 or seconds <= 0:
        return None
    return remaining / seconds


def nearest_rank(values: Sequence[float], q: float) -> float | None:
    """The q-quantile (0 < q <= 1) by nearest rank; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def lag_verdict(
    samples: Sequence[tuple[float, int]],
    offered_per_s: float,
    drained_after_s: float | None,
    achieved_per_s: float,
    target_per_s: float,
    alerts: int,
    sent: int,
) -> dict[str, Any]:
    """Whether the load was sustained while latency was measured: lag flat (neither growing nor still
    shrinking from a backlog), drained quickly once sending stopped, load sent, alerts in.

    `samples` are (seconds, lag in records) over the probe window.
    """
    slope = linear_slope([t for t, _ in samples], [lag for _, lag in samples])
    limit = LAG_TOLERANCE * offered_per_s
    reasons = []
    if slope > limit:
        reasons.append(f"lag grew {slope:+.1f} records/s (limit {limit:.1f})")
    elif slope < -limit:
        reasons.append(f"lag shrank {slope:+.1f} records/s (limit {limit:.1f}): a backlog was draining")
    if drained_after_s is None or drained_after_s > DRAIN_AFTER_LOAD_S:
        took = "never" if drained_after_s is None else f"{drained_after_s:.1f} s"
        reasons.append(f"lag drained after the load stopped in {took} (limit {DRAIN_AFTER_LOAD_S:.0f} s)")
    if target_per_s > 0 and achieved_per_s < SEND_SHARE * target_per_s:
        reasons.append(f"background sent {achieved_per_s:.0f}/s of {target_per_s:.0f}/s")
    if alerts < sent:
        reasons.append(f"{sent - alerts} of {sent} alerts missing")
    lags = [lag for _, lag in samples]
    return {
        "slope_per_s": round(slope, 1),
        "limit_per_s": round(limit, 1),
        "max": max(lags, default=0),
        "at_end": lags[-1] if lags else 0,
        "drained_after_s": None if drained_after_s is None else round(drained_after_s, 2),
        "grew": slope > limit,
        "valid": not reasons,
        "invalid_because": "; ".join(reasons),
    }


def median_of(values: Sequence[float | None]) -> float | None:
    """The median of the numbers among `values`; None if there are none."""
    numbers = [v for v in values if v is not None]
    return statistics.median(numbers) if numbers else None


def ratio(value: float | None, baseline: float | None) -> float | None:
    """value / baseline, rounded; None when either is missing or the baseline is 0."""
    if value is None or not baseline:
        return None
    return round(value / baseline, 4)


def summarise_latency(attempts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Latency medians over the attempts whose load was sustained; the others listed with their reason."""
    valid = [a for a in attempts if a.get("valid")]
    return {
        "alert_latency_p50_s": median_of([a["p50_s"] for a in valid]),
        "alert_delivered_p50_s": median_of([a["delivered_p50_s"] for a in valid]),
        "alert_latency_p99_s": median_of([a["p99_s"] for a in valid]),
        "alert_delivered_p99_s": median_of([a["delivered_p99_s"] for a in valid]),
        "latency_background_per_s": median_of([a["background_target_per_s"] for a in valid or attempts]),
        "latency_probe_per_s": median_of([a["probe_per_s"] for a in valid or attempts]),
        "latency_valid_runs": len(valid),
        "latency_runs": len(attempts),
        "latency_load_fractions": sorted(
            {a["load_fraction"] for a in valid if a.get("load_fraction") is not None}, reverse=True
        ),
        "not_sustained": [
            {
                "load_fraction": a.get("load_fraction"),
                "background_per_s": a["background_target_per_s"],
                "p99_s": a["delivered_p99_s"],
                "because": a["invalid_because"],
            }
            for a in attempts
            if not a.get("valid")
        ],
    }
