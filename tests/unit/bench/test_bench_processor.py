"""The processor bench's pure parts: workload shape, drain rate, percentiles, lag verdict and medians."""

from typing import Any

import pytest

from bench.e2e_bench import linear_slope
from bench.processor_bench import summarise
from bench.processor_maths import (
    drain_rate,
    lag_verdict,
    nearest_rank,
    ratio,
    split,
    spread,
    summarise_latency,
    zipf_weights,
)


@pytest.mark.parametrize(
    ("events", "first", "seen", "committed", "expected"),
    [
        (10_000, 1000, 5.0, 14.0, 1000.0),  # the first batch's events are not in the numerator
        (10_000, 0, 0.0, 10.0, 1000.0),
        (1000, 1000, 1.0, 2.0, None),  # the first batch was everything: no rate
        (1000, 10, 2.0, 2.0, None),
    ],
)
def test_drain_rate(events: int, first: float, seen: float, committed: float, expected: float | None) -> None:
    assert drain_rate(events, first, seen, committed) == expected


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        (list(range(1, 101)), 0.99, 99),
        (list(range(1, 101)), 0.5, 50),
        (list(range(1, 301)), 0.99, 297),
        ([3.0], 0.99, 3.0),
        ([], 0.5, None),
    ],
)
def test_nearest_rank(values: list[float], q: float, expected: float | None) -> None:
    assert nearest_rank(values, q) == expected


def test_linear_slope() -> None:
    assert linear_slope([0, 1, 2], [5, 7, 9]) == 2.0
    assert linear_slope([1], [3]) == 0.0


def _sawtooth(growth: float) -> list[tuple[float, int]]:
    # committed offsets move once a second: the lag saws up and down by the rate even when flat
    return [(t / 4, int(400 * ((t % 4) / 4) + growth * t / 4)) for t in range(80)]


def test_a_flat_lag_is_valid() -> None:
    verdict = lag_verdict(_sawtooth(0), 420.0, 1.2, 399.0, 400.0, alerts=400, sent=400)
    assert verdict["valid"] is True
    assert verdict["grew"] is False
    assert verdict["invalid_because"] == ""


def test_a_growing_lag_is_invalid_and_says_why() -> None:
    verdict = lag_verdict(_sawtooth(300), 420.0, 12.0, 399.0, 400.0, alerts=400, sent=400)
    assert verdict["valid"] is False
    assert verdict["grew"] is True
    assert "lag grew" in verdict["invalid_because"]
    assert "12.0 s" in verdict["invalid_because"]


def test_a_shrinking_lag_is_not_flat_either() -> None:
    # a backlog from the warm-up still draining: the latencies include a queue
    verdict = lag_verdict(_sawtooth(-300), 420.0, 1.0, 399.0, 400.0, alerts=400, sent=400)
    assert verdict["valid"] is False
    assert verdict["grew"] is False
    assert "lag shrank" in verdict["invalid_because"]


@pytest.mark.parametrize(
    ("drained", "achieved", "alerts", "reason"),
    [
        (None, 400.0, 400, "never"),
        (1.0, 300.0, 400, "background sent 300/s of 400/s"),
        (1.0, 400.0, 390, "10 of 400 alerts missing"),
    ],
)
def test_other_reasons_make_the_latency_invalid(
    drained: float | None, achieved: float, alerts: int, reason: str
) -> None:
    verdict = lag_verdict(_sawtooth(0), 420.0, drained, achieved, 400.0, alerts=alerts, sent=400)
    assert verdict["valid"] is False
    assert reason in verdict["invalid_because"]


def test_zipf_weights_give_the_first_licensee_its_share() -> None:
    weights = zipf_weights(50, 0.30)
    assert len(weights) == 50
    assert sum(weights) == pytest.approx(1.0)
    assert weights[0] == pytest.approx(0.30, abs=1e-6)
    assert weights == sorted(weights, reverse=True)
    assert zipf_weights(1, 0.3) == [1.0]
    with pytest.raises(ValueError, match="top_share"):
        zipf_weights(5, 0.0)


def test_split_keeps_the_total_and_the_order() -> None:
    counts = split(1000, zipf_weights(50, 0.30))
    assert sum(counts) == 1000
    assert counts[0] == 300
    assert split(10, [1, 1, 1]) in ([4, 3, 3], [3, 4, 3], [3, 3, 4])
    assert split(0, [0.5, 0.5]) == [0, 0]


def test_spread_spaces_times_evenly() -> None:
    assert spread(4, 100.0, 8.0) == [100.0, 102.0, 104.0, 106.0]
    assert spread(0, 100.0, 8.0) == []


def test_ratio() -> None:
    assert ratio(2500.0, 10000.0) == 0.25
    assert ratio(None, 1.0) is None
    assert ratio(1.0, 0.0) is None


def _drain(rate: float, cold: bool, startup: float, rss: float) -> dict[str, Any]:
    return {
        "events_per_s": rate,
        "events_per_cpu_s": 2 * rate,
        "raw": {"events_per_s": 10 * rate},
        "ratio_to_raw": 0.1,
        "cold_state": cold,
        "startup_s": startup,
        "rss_mb": rss,
        "resends": 10,
        "duplicates": 10,
        "worker_cpu_share": 0.5,
        "load_average_1m": 3.0,
    }


def _latency(fraction: float, p99: float, valid: bool) -> dict[str, Any]:
    return {
        "load_fraction": fraction,
        "p50_s": p99 / 2,
        "p99_s": p99,
        "delivered_p50_s": p99 / 2 + 0.01,
        "delivered_p99_s": p99 + 0.01,
        "background_target_per_s": 1000 * fraction,
        "probe_per_s": 20.0,
        "valid": valid,
        "invalid_because": "" if valid else "lag grew",
    }


def test_summarise_splits_recovery_from_warm_restarts() -> None:
    drains = [
        _drain(900.0, True, 60.0, 900.0),
        _drain(1000.0, False, 5.0, 300.0),
        _drain(1100.0, False, 7.0, 320.0),
        _drain(1200.0, True, 80.0, 1000.0),
    ]
    med = summarise(drains, [], 10_000_000)
    assert med["dedupe_keys_prefilled"] == 10_000_000
    assert med["processor_events_per_s"] == 1050.0
    assert med["raw_events_per_s"] == 10500.0
    assert med["recovery_s"] == 70.0
    assert med["warm_startup_s"] == 6.0
    assert med["rss_max_mb"] == 1000.0
    assert (med["duplicates_expected"], med["duplicates_seen"]) == (40, 40)
    assert med["latency_runs"] == 0


def test_latency_medians_over_sustained_attempts_only() -> None:
    med = summarise_latency([_latency(0.5, 30.0, False), _latency(0.25, 0.2, True)])
    assert med["alert_latency_p99_s"] == 0.2
    assert med["alert_delivered_p99_s"] == pytest.approx(0.21)
    assert med["latency_valid_runs"] == 1
    assert med["latency_runs"] == 2
    assert med["latency_load_fractions"] == [0.25]
    assert med["not_sustained"] == [
        {"load_fraction": 0.5, "background_per_s": 500.0, "p99_s": 30.01, "because": "lag grew"}
    ]


def test_latency_without_any_sustained_attempt() -> None:
    med = summarise_latency([_latency(0.5, 30.0, False)])
    assert med["alert_latency_p99_s"] is None
    assert med["latency_valid_runs"] == 0
    assert med["latency_background_per_s"] == 500.0
