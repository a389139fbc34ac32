"""bench.processor_bench's pure parts: the drain rate, percentiles, the lag verdict and the medians."""

from typing import Any

import pytest

from bench.processor_bench import drain_rate, lag_verdict, linear_slope, nearest_rank, summarise


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


def _run(rate: float, latencies: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "processor_events_per_s": rate,
        "raw_consumer_events_per_s": 10 * rate,
        "ratio": 0.1,
        "drain": {"startup_s": 5.0},
        "latency": latencies[-1] if latencies else None,
        "latency_attempts": latencies,
    }


def _latency(fraction: float, p99: float, valid: bool) -> dict[str, Any]:
    return {
        "load_fraction": fraction,
        "p50_s": p99 / 2,
        "p99_s": p99,
        "delivered_p99_s": p99 + 0.01,
        "background_target_per_s": 1000 * fraction,
        "probe_per_s": 20.0,
        "valid": valid,
        "invalid_because": "" if valid else "lag grew",
    }


def test_summarise_takes_latency_medians_over_sustained_runs_only() -> None:
    runs = [
        _run(900.0, [_latency(0.5, 0.1, True)]),
        _run(1000.0, [_latency(0.5, 30.0, False), _latency(0.25, 0.2, True)]),
        _run(1100.0, [_latency(0.5, 0.3, True)]),
    ]
    med = summarise(runs)
    assert med["processor_events_per_s"] == 1000.0
    assert med["alert_latency_p99_s"] == 0.2
    assert med["latency_valid_runs"] == 3
    assert med["latency_load_fractions"] == [0.5, 0.25]
    assert med["not_sustained"] == [
        {"load_fraction": 0.5, "background_per_s": 500.0, "p99_s": 30.0, "because": "lag grew"}
    ]


def test_summarise_without_any_sustained_latency() -> None:
    med = summarise([_run(900.0, [_latency(0.5, 30.0, False)])])
    assert med["alert_latency_p99_s"] is None
    assert med["latency_valid_runs"] == 0
    assert med["invalid_alert_latency_p99_s"] == 30.0
    drain_only = summarise([_run(900.0, [])])
    assert drain_only["latency_runs"] == 0
