"""Billable usage, aggregated: buckets of counted calls, the deltas that close them, and the hook's flush."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from processor_helpers import OCT, Feed, agreements, call

from services.core.clock import FixedClock
from services.core.events import UsageRecorded, loads
from services.core.schemas import BILLABLE_TYPE, problems
from services.processor.batch import Batch, Known
from services.processor.domain import usage
from services.processor.domain.step import Counts
from services.processor.flush import UsageFlush
from services.processor.metrics import ProcessorMetrics
from services.processor.pipeline import remember
from services.processor.state import OPEN_USAGE, PARTITION_PREFIX, PartitionState
from services.processor.ticker import Ticker

PEBBLE = agreements()["pebble"]
OMNI = agreements()["omnisoft"]  # notice for gov-statistics-office dated 2026-09-01
HOUR = int(OCT.timestamp())
AUG31 = datetime(2026, 8, 31, tzinfo=UTC)
GOV = "gov-statistics-office"


@pytest.mark.parametrize(
    ("at", "org", "org_type", "bucket"),
    [
        (OCT, "reader-1", "commercial", (HOUR, "reader-1", "commercial", "")),
        (OCT + timedelta(minutes=59, seconds=59), "reader-1", "commercial", (HOUR, "reader-1", "commercial", "")),  # noqa: E501
        (OCT + timedelta(hours=1), "reader-1", "commercial", (HOUR + 3600, "reader-1", "commercial", "")),
        (OCT, GOV, "government", (HOUR, GOV, "government", "1")),
        (OCT, "gov-other", "government", (HOUR, "gov-other", "government", "0")),
        (AUG31, GOV, "government", (int(AUG31.timestamp()), GOV, "government", "0")),
    ],
)  # fmt: skip
def test_a_call_is_billed_in_its_hour_app_org_and_notice_bucket(
    at: datetime, org: str, org_type: str, bucket: tuple[int, str, str, str]
) -> None:
    hour, org_id, kind, notice = bucket
    want = f"{hour}|omni-search|{org_id}|{kind}|{notice}"
    assert usage.bucket_id(call(1, at, app="omni-search", org=org, org_type=org_type), OMNI) == want


def test_a_government_call_without_an_agreement_counts_as_not_notified() -> None:
    assert usage.notified(call(1, OCT, org="gov-x", org_type="government"), None) is False
    assert usage.notified(call(1, OCT), None) is None


def test_adding_calls_sums_them_in_the_bucket_and_leaves_the_old_value_alone() -> None:
    first = usage.add(None, call(1, OCT + timedelta(minutes=5), records=3), 10)
    second = usage.add(first, call(2, OCT, records=4), 11)
    assert first == [1, 3, (HOUR + 300) * 1000, (HOUR + 300) * 1000, 10, 10]
    assert second == [2, 7, HOUR * 1000, (HOUR + 300) * 1000, 10, 11]


def opened(calls: list[Any], agreement: Any = PEBBLE, start: int = 0) -> dict[str, list[int]]:
    """The open buckets of `calls`, read from input positions `start`, `start + 1`, ..."""
    buckets: dict[str, list[int]] = {}
    for position, one in enumerate(calls, start):
        bucket = usage.bucket_id(one, agreement)
        buckets[bucket] = usage.add(buckets.get(bucket), one, position)
    return buckets


def test_a_counted_call_writes_its_bucket_and_the_bucket_list_only_when_it_opens_a_bucket() -> None:
    feed = Feed(agreement=PEBBLE)
    keys = [
        sorted(w.key for w in feed.send(call(n, OCT + timedelta(minutes=n))).decision.writes) for n in (1, 2)
    ]
    assert [[k for k in found if k[:2] in ("b:", "u")] for found in keys] == [
        [f"b:{HOUR}|pebble-app|reader-1|commercial|", "u"], [f"b:{HOUR}|pebble-app|reader-1|commercial|"],
    ]  # fmt: skip


def test_the_deltas_of_open_buckets_are_schema_valid_and_add_up_to_the_calls() -> None:
    buckets = opened([call(n, OCT + timedelta(minutes=20 * n), records=n) for n in range(5)], start=100)
    deltas = usage.deltas("pebble", buckets, "calls", 3)
    assert [(d.period_start, d.calls, d.records) for d in deltas] == [
        (OCT, 3, 0 + 1 + 2), (OCT + timedelta(hours=1), 2, 3 + 4),
    ]  # fmt: skip
    for delta in deltas:
        event = delta.to_cloudevent()
        assert problems(BILLABLE_TYPE, event) == []
        assert UsageRecorded.from_cloudevent(loads(__import__("orjson").dumps(event))) == delta
        assert usage.bucket_of(event["data"]) in buckets
    assert deltas[0].reference == ("calls", 3, 100, 102)
    assert deltas[1].first_event_at == OCT + timedelta(hours=1)


def test_a_deltas_usage_id_depends_on_its_bucket_and_first_input_position_only() -> None:
    buckets = opened([call(1, OCT)], start=7)
    more = opened([call(1, OCT), call(2, OCT)], start=7)
    (one,), (two,) = usage.deltas("pebble", buckets, "calls", 0), usage.deltas("pebble", more, "calls", 0)
    assert one.usage_id == two.usage_id
    (other,) = usage.deltas("pebble", buckets, "calls", 1)
    assert other.usage_id != one.usage_id


class FakeTransaction:
    """quix's store transaction as the batch uses it: get, set (with ttl and timestamp), delete."""

    def __init__(self, stored: dict[tuple[bytes, str], Any] | None = None) -> None:
        self.stored = dict(stored or {})
        self.sets: list[tuple[bytes, str, Any, Any]] = []
        self.reads = 0

    def get(self, key: str, prefix: bytes, timestamp: int | None = None) -> Any:
        self.reads += 1
        return self.stored.get((prefix, key))

    def set(self, key: str, value: Any, prefix: bytes, timestamp: int | None = None, ttl: Any = None) -> None:
        self.sets.append((prefix, key, value, ttl))
        self.stored[(prefix, key)] = value

    def delete(self, key: str, prefix: bytes) -> None:
        self.sets.append((prefix, key, None, None))
        self.stored.pop((prefix, key), None)


def test_a_batch_reads_each_key_once_and_writes_each_touched_key_once_with_its_last_value() -> None:
    transaction = FakeTransaction({(b"p", "m"): 1})
    batch = Batch(transaction)
    for n in range(100):
        batch.put(b"p", "m", batch.get(b"p", "m", 0) + 1, 10_000, n)
    assert transaction.reads == 1 and transaction.sets == []
    assert batch.write() == 1
    assert transaction.sets == [(b"p", "m", 101, timedelta(milliseconds=10_000 - 99))]
    assert batch.write() == 0


def test_later_checkpoints_read_window_keys_from_what_earlier_ones_wrote_and_dedupe_keys_from_quix() -> None:
    transaction = FakeTransaction({(b"p", "m:2026-10"): 5, (b"p", "d:ab"): 1})
    known = Known(remember)
    first = Batch(transaction, known.of(0), remember)
    first.put(b"p", "m:2026-10", first.get(b"p", "m:2026-10", 0) + 1, 10_000, 1)
    assert first.get(b"p", "d:ab", 0) == 1
    first.delete(b"p", "u")
    first.write()
    reads = transaction.reads
    second = Batch(transaction, known.of(0), remember)
    assert (second.get(b"p", "m:2026-10", 0), second.get(b"p", "u", 0)) == (6, None)
    assert transaction.reads == reads  # the committed counter and the delete, without asking quix
    assert second.get(b"p", "d:ab", 0) == 1 and transaction.reads == reads + 1
    known.forget()  # an assignment changed: another worker may have written the partition since
    assert Batch(transaction, known.of(0), remember).get(b"p", "m:2026-10", 0) == 6
    assert transaction.reads == reads + 2


def test_a_partitions_remembered_values_are_dropped_once_they_reach_the_limit() -> None:
    known = Known(remember, limit=3)
    held = known.of(1)
    held.update({(b"p", f"n:{n}"): n for n in range(3)})
    assert known.of(1) == {} and known.of(1) is not held


def test_a_flush_sends_only_the_due_licensees_buckets_and_forgets_them() -> None:
    clock = FixedClock(datetime(2026, 11, 1, tzinfo=UTC))
    now = clock.now().timestamp()
    due, fresh = opened([call(1, OCT)], start=5), opened([call(2, OCT, licensee="omni")], None, 6)
    stored = {
        **{(b"pebble", usage.BUCKET_PREFIX + b): held for b, held in due.items()},
        **{(b"omni", usage.BUCKET_PREFIX + b): held for b, held in fresh.items()},
        (b"pebble", usage.OPEN_KEY): list(due), (b"omni", usage.OPEN_KEY): list(fresh),
        (PARTITION_PREFIX, OPEN_USAGE): {"pebble": now - 300, "omni": now - 10},
    }  # fmt: skip
    transaction = FakeTransaction(stored)
    batch = Batch(transaction)
    state = PartitionState(batch)
    sent: list[tuple[str, bytes, bytes]] = []
    flush = UsageFlush("calls", "billable", 300.0, clock)
    assert flush.flush(2, batch, state, lambda *record: sent.append(record)) == 1
    assert [(topic, key, loads(value)["data"]["calls"]) for topic, key, value in sent] == [
        ("billable", b"pebble", 1)
    ]
    assert flush.next_due(state) == now - 10 + 300
    batch.write()
    assert not [key for prefix, key in transaction.stored if prefix == b"pebble"]
    assert transaction.stored[(PARTITION_PREFIX, OPEN_USAGE)] == {"omni": now - 10}
    assert transaction.stored[(b"omni", usage.OPEN_KEY)] == list(fresh)


def test_the_ticker_ticks_due_partitions_once_per_interval_and_all_of_them_every_sweep() -> None:
    sent: list[int] = []
    clock = [1000.0]
    ticker = Ticker(sent.append, lambda: 4, lambda: clock[0], interval=1.0, sweep=60.0)
    ticker.due(1, 1000.0)
    ticker.due(2, 2000.0)
    swept = ticker._tick(1000.0)
    assert sent == [1] and swept == 1000.0
    ticker._tick(swept)
    assert sent == [1]  # not again before the flush it caused could report
    clock[0] = 1060.0
    ticker._tick(swept)
    assert sent == [1, 0, 1, 2, 3]
    ticker.revoked([1, 2])
    assert ticker.open_partitions() == 0


def test_usage_ratios_set_from_a_lost_partition_are_dropped_and_come_back_once_it_is_assigned_again() -> None:
    metrics = ProcessorMetrics(10)
    metrics.show("pebble", PEBBLE, Counts("2026-10", 10, 100, 1), partition=2)
    metrics.show("omni", PEBBLE, Counts("2026-10", 10, 100, 1), partition=3)
    labels = {"licensee": "pebble", "limit": "calls_per_month"}
    assert metrics.registry.get_sample_value("tollgate_usage_ratio", labels) is not None
    metrics.forget_partitions([2])
    assert metrics.registry.get_sample_value("tollgate_usage_ratio", labels) is None
    assert (
        metrics.registry.get_sample_value("tollgate_usage_ratio", {**labels, "licensee": "omni"}) is not None
    )
    # A show held for a checkpoint of the lost partition (tally.py) arrives late: it is not shown.
    metrics.show("pebble", PEBBLE, Counts("2026-10", 20, 100, 1), partition=2)
    assert metrics.registry.get_sample_value("tollgate_usage_ratio", labels) is None
    metrics.regained([2])
    metrics.show("pebble", PEBBLE, Counts("2026-10", 30, 100, 1), partition=2)
    shown = metrics.registry.get_sample_value("tollgate_usage_ratio", labels)
    assert shown == 30 / PEBBLE.limits.calls_per_month
