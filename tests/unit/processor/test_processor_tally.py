"""The tally: a checkpoint's metric increments are summed, and reach the counters only once it committed."""

from __future__ import annotations

from processor_helpers import agreements

from services.processor.domain.step import Counts
from services.processor.metrics import ProcessorMetrics
from services.processor.tally import Tally

PEBBLE = agreements()["pebble"]


def _value(metrics: ProcessorMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_a_checkpoints_increments_reach_the_counters_summed_once_a_later_checkpoint_is_open() -> None:
    metrics = ProcessorMetrics(10)
    current: list[object] = [object()]
    tally = Tally(metrics, lambda: current[0])
    first = current[0]
    for calls, records, lag in ((1, 10, 0.5), (2, 20, 1.5), (3, 5, 2.5)):
        tally.add(first, "counted", "pebble", records, lag, (PEBBLE, Counts("2026-10", calls, 0, 1), 0))
    tally.add(first, "outcome", "duplicate")
    tally.add(first, "outcome", "duplicate")
    tally.add(first, "fired", "pebble", "volume.warning", "warning")
    tally.settle()  # the checkpoint is still open: nothing of it may show
    assert _value(metrics, "tollgate_usage_calls_total", licensee="pebble") is None
    current[0] = object()
    tally.settle()
    assert _value(metrics, "tollgate_usage_calls_total", licensee="pebble") == 3
    assert _value(metrics, "tollgate_usage_records_total", licensee="pebble") == 35
    assert _value(metrics, "tollgate_processor_events_total", outcome="counted") == 3
    assert _value(metrics, "tollgate_processor_events_total", outcome="duplicate") == 2
    assert _value(metrics, "tollgate_violations_total", licensee="pebble", rule="volume.warning") == 1
    assert _value(metrics, "tollgate_event_time_lag_seconds_count") == 3
    assert _value(metrics, "tollgate_event_time_lag_seconds_sum") == 4.5
    ratio = _value(metrics, "tollgate_usage_ratio", licensee="pebble", limit="calls_per_month")
    assert ratio == 3 / PEBBLE.limits.calls_per_month  # the checkpoint's latest counts


def test_settling_often_applies_each_committed_checkpoint_once_and_the_open_one_never() -> None:
    metrics = ProcessorMetrics(10)
    current: list[object] = [object()]
    tally = Tally(metrics, lambda: current[0])
    tally.add(current[0], "outcome", "late")
    tally.settle()
    tally.settle()
    assert _value(metrics, "tollgate_processor_events_total", outcome="late") is None
    second = current[0] = object()
    tally.add(second, "outcome", "late")  # opening a bucket for a new checkpoint settles the earlier one
    assert _value(metrics, "tollgate_processor_events_total", outcome="late") == 1
    current[0] = object()
    tally.settle()
    tally.settle()  # applied once, however often a scrape settles
    assert _value(metrics, "tollgate_processor_events_total", outcome="late") == 2
