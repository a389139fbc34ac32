"""The pre-filled changelog matches, byte for byte, what a real quix worker wrote (captured from one)."""

import struct

from bench.dedupe_prefill import MARKER, STAMPED, changelog_topic, dedupe_record, newest, records
from bench.processor_maths import zipf_weights
from bench.processor_workload import partition_of

WEEK = 7 * 86400


def test_changelog_topic_name() -> None:
    assert changelog_topic("bench-ab", "bench-8b.INPUT") == "changelog__bench-ab--bench-8b.INPUT--default"


def test_dedupe_record_is_what_the_worker_writes() -> None:
    # Captured from a real worker's changelog: call "s-0" of source "bench-0", event time 1790812800.
    key, value = dedupe_record(0, "s-0", 1790812800, WEEK)
    assert key == b'lic-0|"d:5fc421edc8f303c6"'
    assert value == b"\x00\x00\x01\xa1\x18\xcfK\xe8" + b"1790812800"
    assert struct.unpack(">Q", value[:8])[0] == (1790812800 + WEEK + 1) * 1000


def test_records_start_with_each_partitions_marker_then_the_keys() -> None:
    weights = zipf_weights(5, 0.3)
    out = list(records(weights, 100, 2_000_000_000, WEEK))
    partitions = {partition_of(f"lic-{i}".encode()) for i in range(5)}
    markers = [r for r in out if r[1] == MARKER[0]]
    assert [r[0] for r in markers] == sorted(partitions)
    assert out[: len(markers)] == markers
    keys = out[len(markers) :]
    assert len(keys) == 100
    assert all(headers == STAMPED for _, _, _, headers in keys)
    assert all(key.startswith(b"lic-") and b'|"d:' in key for _, key, _, _ in keys)
    assert len({key for _, key, _, _ in keys}) == 100


def test_newest_are_the_latest_calls_of_each_licensee() -> None:
    weights = zipf_weights(5, 0.3)
    recent = newest(weights, 1000, 2_000_000_000, WEEK, 10)
    assert len(recent) == 10
    assert all(at < 2_000_000_000 for _, _, at in recent)
    assert "pre-299" in {call_id for lic, call_id, _ in recent if lic == 0}
