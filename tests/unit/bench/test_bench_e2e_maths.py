"""The e2e bench's pure parts: slopes, the sustained verdict, ramp rates, traffic (no services)."""

from datetime import UTC, datetime

import orjson
import pytest

from bench.e2e_bench import (
    Sample,
    Traffic,
    analyse,
    batch_size,
    bench_agreements,
    linear_slope,
    previous_month,
    ramp_rates,
    sustained,
)
from services.core.events import ApiCall


@pytest.mark.parametrize(
    ("xs", "ys", "expected"),
    [
        ([0, 1, 2, 3], [0, 2, 4, 6], 2.0),
        ([0, 5, 10], [7, 7, 7], 0.0),
        ([1, 2, 3, 4], [1, 3, 2, 4], 0.8),
        ([3], [9], 0.0),
        ([], [], 0.0),
        ([2, 2, 2], [1, 2, 3], 0.0),
    ],
)
def test_linear_slope(xs: list[float], ys: list[float], expected: float) -> None:
    assert linear_slope(xs, ys) == pytest.approx(expected)


def test_slope_needs_equal_lengths() -> None:
    with pytest.raises(ValueError):
        linear_slope([1, 2], [1])


def _samples(rate: float, processed_share: float, ledgered_share: float, n: int = 7) -> list[Sample]:
    out = []
    for i in range(1, n + 1):
        t = 5.0 * i
        accepted = int(rate * t)
        out.append(
            Sample(
                t,
                accepted,
                accepted,
                int(accepted * processed_share),
                int(accepted * processed_share * ledgered_share),
            )
        )
    return out


def test_keeping_up_is_sustainable() -> None:
    verdict = analyse(_samples(1000, 1.0, 1.0), 1000)
    assert verdict["sustainable"] is True
    assert verdict["lag_grew"] == {"ingest_to_processor": False, "processor_to_ledger": False}
    assert verdict["through_all_three_per_s"] == pytest.approx(1000, rel=0.01)


def test_a_processor_at_half_speed_makes_its_lag_grow() -> None:
    verdict = analyse(_samples(1000, 0.5, 1.0), 1000)
    assert verdict["sustainable"] is False
    assert verdict["lag_grew"]["ingest_to_processor"] is True
    assert verdict["lag_grew"]["processor_to_ledger"] is False
    assert verdict["lag_slope_per_s"]["ingest_to_processor"] == pytest.approx(500, rel=0.01)
    assert verdict["through_all_three_per_s"] == pytest.approx(500, rel=0.01)


def test_a_slow_ledger_is_seen_too() -> None:
    verdict = analyse(_samples(1000, 1.0, 0.8), 1000)
    assert verdict["lag_grew"] == {"ingest_to_processor": False, "processor_to_ledger": True}


def test_ingest_below_the_target_is_not_sustainable() -> None:
    verdict = analyse(_samples(800, 1.0, 1.0), 1000)
    assert verdict["lag_grew"] == {"ingest_to_processor": False, "processor_to_ledger": False}
    assert verdict["sustainable"] is False


def test_constant_lag_does_not_count_as_growth() -> None:
    samples = [Sample(5.0 * i, 500 * i, 500 * i, 500 * i - 400, 500 * i - 450) for i in range(1, 8)]
    verdict = analyse(samples, 100)
    assert verdict["lag_slope_per_s"] == {"ingest_to_processor": 0.0, "processor_to_ledger": 0.0}
    assert verdict["lag_at_end"] == {"ingest_to_processor": 400, "processor_to_ledger": 50}


def test_warm_up_and_drain_samples_are_left_out() -> None:
    steady = [Sample(5.0 * i, 100 * i, 100 * i, 100 * i, 100 * i) for i in range(1, 6)]
    warm = Sample(0.5, 0, 0, 0, 0)
    drain = [Sample(30.0, 500, 500, 500, 500, sending=False), Sample(35.0, 500, 500, 500, 500, sending=False)]
    verdict = analyse([warm, *steady, *drain], 20)
    assert verdict["rates"]["accepted_per_s"] == pytest.approx(20.0)
    assert verdict["window_seconds"] == 20.0


@pytest.mark.parametrize(("rate", "expected"), [(5000, 500), (1000, 500), (170, 85), (50, 25), (1, 1)])
def test_low_rates_send_smaller_batches_at_least_twice_a_second(rate: float, expected: int) -> None:
    assert batch_size(rate, 500) == expected


def test_ramp_rates() -> None:
    assert ramp_rates(50, 1.5, 5) == [50, 80, 110, 170, 250]


def test_previous_month() -> None:
    assert previous_month(datetime(2026, 11, 23, 19, 0, tzinfo=UTC)) == (
        datetime(2026, 10, 1, tzinfo=UTC),
        31 * 86400,
    )
    assert previous_month(datetime(2026, 3, 1, tzinfo=UTC)) == (datetime(2026, 2, 1, tzinfo=UTC), 28 * 86400)
    assert previous_month(datetime(2027, 1, 5, tzinfo=UTC))[0] == datetime(2026, 12, 1, tzinfo=UTC)


def test_traffic_is_unique_valid_inside_the_month_and_rising() -> None:
    start, seconds = datetime(2026, 10, 1, tzinfo=UTC), 31 * 86400
    traffic = Traffic("run1", 7, start, seconds, total_hint=1000)
    batches = traffic.bodies(1200, 500) + traffic.bodies(10, 500)
    assert [size for size, _ in batches] == [500, 500, 200, 10]
    events = [e for _, body in batches for e in orjson.loads(body)]
    assert len({e["id"] for e in events}) == 1210
    calls = [ApiCall.from_cloudevent(e) for e in events]
    times = [c.time for c in calls]
    assert times == sorted(times)
    assert start <= times[0] and times[-1] < datetime(2026, 11, 1, tzinfo=UTC)
    assert len({c.licensee_id for c in calls}) == 7
    assert len({c.app_id for c in calls}) == 8


def test_every_bench_licensee_has_an_agreement_with_its_apps() -> None:
    agreements = {a.licensee_id: a for a in bench_agreements(3)}
    assert {"omnisoft", "pebble", "oldco", "bench-lic-0000", "bench-lic-0002"} <= set(agreements)
    ours = agreements["bench-lic-0001"]
    assert ours.app_registered("omni-search")
    assert ours.limits.calls_per_month == agreements["omnisoft"].limits.calls_per_month * 1000


@pytest.mark.parametrize(
    ("grew", "accepted_ok", "drained_after", "expected"),
    [
        (False, True, None, True),
        (True, True, 2.5, True),  # a noisy slope, but the pipeline caught up at once
        (True, True, 9.0, False),  # a real backlog: 9 s to clear after a 30 s step
        (True, True, None, False),
        (False, False, 1.0, False),
    ],
)
def test_sustained(grew: bool, accepted_ok: bool, drained_after: float | None, expected: bool) -> None:
    analysis = {
        "accepted_ok": accepted_ok,
        "lag_grew": {"ingest_to_processor": grew, "processor_to_ledger": False},
    }
    assert sustained(analysis, drained_after, 30.0) is expected
