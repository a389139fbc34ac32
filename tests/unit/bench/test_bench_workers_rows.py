"""The many-worker bench's rows: the many-worker run against the single-worker run of the same day."""

from __future__ import annotations

from typing import Any

from bench.oneday_report import workers_rows


def _run(sustained: float, drained: float, exact: bool) -> dict[str, Any]:
    return {
        "sustained_events_per_s": sustained,
        "target_rate": 5000.0,
        "load_average_after_send": [4.2, 3.0, 2.0],
        "run": {"rates": {"accepted_per_s": 4800.0, "processed_per_s": sustained,
                          "ledgered_per_s": sustained}},
        "drain": {"drained_after_s": drained},
        "exact": exact,
        "exactness": {"ledger_calls": 10, "expected_calls": 10},
    }


RESULT = {
    "plan": {"calls": 200_000, "licensees": 200},
    "single": _run(2000.0, 40.0, True),
    "many": _run(2500.0, 30.0, True),
    "many_equals_single": {"totals_per_licensee": True, "alert_ids": False, "dlq_count": True},
}


def test_the_many_worker_rates_are_shown_as_a_ratio_to_the_single_worker_run() -> None:
    rows = {r.metric: r for r in workers_rows(RESULT)}
    sustained = rows["sustained through all three, 2 ingest / 3 workers / 2 ledgers"]
    assert (sustained.value, sustained.baseline_value, sustained.ratio) == (2500.0, 2000.0, 1.25)
    assert rows["drain after sending stopped"].baseline_value == 40.0
    assert "load average after sending 4.2" in sustained.note


def test_a_difference_between_the_two_runs_shows_as_not_equal_naming_the_item() -> None:
    row = {r.metric: r for r in workers_rows(RESULT)}[
        "many-worker run shows the single-worker run's totals, alert ids and DLQ"
    ]
    assert row.value == 0.0
    assert "alert_ids: False" in row.note
