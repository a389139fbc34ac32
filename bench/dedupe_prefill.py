"""Pre-fill a worker's changelog with N dedupe keys, in the exact format quix-streams writes.

Processing 10 million calls at ~10k/s to fill the dedupe store takes ~17 minutes. Instead the bench
writes the changelog topic the worker would have written (`changelog__<group>--<input>--default`):
one record per dedupe key, `<licensee>|"d:<digest>"` -> 8-byte big-endian expiry (ms) + the event time
as JSON, with the headers quix puts on a TTL-stamped default-CF record, preceded on each partition by
quix's TTL-migration marker. The format was copied from a real worker's changelog (see
tests/unit/bench/test_dedupe_prefill.py). The worker then *recovers* the keys from the changelog
into RocksDB, which is also the recovery measurement. The drain proves the keys are really there:
re-sent pre-filled calls must come out as duplicates.

The keys are real dedupe digests of calls `pre-<n>` of source `bench-<licensee>`, Zipf-split across
licensees like the traffic, event times spread over the horizon before `end`.
"""

from __future__ import annotations

import json
import logging
import struct
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.processor_maths import split
from bench.processor_workload import (
    Record,
    create_compacted,
    fast_producer,
    licensee,
    partition_of,
    produce_all,
)
from services.core.ids import event_key
from services.processor.domain.dedupe import digest

log = logging.getLogger("bench.prefill")
STAMPED = [("__column_family__", b"default"), ("__ttl_stamped__", b"\x01")]
MARKER = (b"__ttl_migration_done__", struct.pack(">Q", 2), [("__column_family__", b"__ttl_system__")])
MARGIN_S = 1  # the domain's expiry margin (services/processor/domain/step.py)
_stamp = struct.Struct(">Q").pack


def changelog_topic(group: str, input_topic: str) -> str:
    """The name quix gives the default store's changelog of `group` reading `input_topic`."""
    return f"changelog__{group}--{input_topic}--default"


def dedupe_record(lic: int, call_id: str, at: int, horizon_s: int) -> tuple[bytes, bytes]:
    """(key, value) of one dedupe entry as the worker's changelog holds it."""
    name = licensee(lic)
    key = f'{name}|"d:{digest(event_key(f"bench-{lic}", call_id))}"'.encode()
    return key, _stamp((at + horizon_s + MARGIN_S) * 1000) + str(at).encode()


@dataclass(frozen=True)
class Prefill:
    """What was written: how many keys, over which event times, and the last calls of each licensee."""

    keys: int
    start: int
    end: int
    seconds: float
    recent: list[tuple[int, str, float]]  # (licensee, call id, event time) of the newest pre-filled calls


def records(weights: Sequence[float], keys: int, end: int, horizon_s: int) -> Iterator[Record]:
    """The changelog records: each partition's marker, then every licensee's keys spread over the horizon."""
    partitions = sorted({partition_of(licensee(i).encode()) for i in range(len(weights))})
    for partition in partitions:
        yield partition, MARKER[0], MARKER[1], MARKER[2]
    start = end - horizon_s
    for lic, count in enumerate(split(keys, weights)):
        partition = partition_of(licensee(lic).encode())
        step = horizon_s / count if count else 0
        for n in range(count):
            key, value = dedupe_record(lic, f"pre-{n}", int(start + n * step), horizon_s)
            yield partition, key, value, STAMPED


def newest(
    weights: Sequence[float], keys: int, end: int, horizon_s: int, how_many: int
) -> list[tuple[int, str, float]]:
    """The `how_many` newest pre-filled calls, split across licensees like the traffic."""
    out = []
    for lic, (count, take) in enumerate(zip(split(keys, weights), split(how_many, weights), strict=True)):
        step = horizon_s / count if count else 0
        for n in range(max(0, count - take), count):
            out.append((lic, f"pre-{n}", float(int(end - horizon_s + n * step))))
    return out


def prefill(
    bootstrap: str, topic: str, weights: Sequence[float], keys: int, end: int, horizon_s: int, resends: int
) -> Prefill:
    """Create the changelog `topic` and write `keys` dedupe entries into it."""
    create_compacted(bootstrap, topic)
    started = time.monotonic()
    written = produce_all(fast_producer(bootstrap), topic, records(weights, keys, end, horizon_s))
    seconds = time.monotonic() - started
    log.info("pre-filled %s with %d records in %.0f s", topic, written, seconds)
    recent = newest(weights, keys, end, horizon_s, resends)
    return Prefill(keys, end - horizon_s, end, round(seconds, 1), recent)


def count_keys(state_dir: Path, high_water_ms: int) -> dict[str, int]:
    """Dedupe keys in a stopped worker's RocksDB stores: on disk, and live (expiring after the mark)."""
    from rocksdict import AccessType, Options, Rdict

    on_disk = live = 0
    for path in sorted(state_dir.glob("*/default/*/*")):
        db = Rdict(str(path), options=Options(raw_mode=True), access_type=AccessType.read_only())
        try:
            for key, value in db.items():
                if b'|"d:' in key and isinstance(value, bytes):
                    on_disk += 1
                    live += struct.unpack_from(">Q", value)[0] > high_water_ms
        finally:
            db.close()
    return {"on_disk": on_disk, "live": live}


def describe(prefill_result: Prefill) -> dict[str, object]:
    """JSON-ready summary."""
    return {
        "keys": prefill_result.keys,
        "event_time_from": prefill_result.start,
        "event_time_to": prefill_result.end,
        "write_seconds": prefill_result.seconds,
        "format": json.dumps({"key": '<licensee>|"d:<digest>"', "value": ">Q expiry ms + event time"}),
    }
