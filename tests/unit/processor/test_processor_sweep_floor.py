"""The TTL sweep from a floor (services/processor/sweep_floor.py), on real RocksDB files in tmp_path."""

from __future__ import annotations

import random
import struct
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from quixstreams.state.metadata import Marker
from quixstreams.state.rocksdb import RocksDBOptions, RocksDBStore
from quixstreams.state.rocksdb.partition import TTL_INDEX_CF_NAME, RocksDBStorePartition
from rocksdict import WriteBatch

from services.processor.sweep_floor import FlooredPartition, FlooredStore, install, next_floor

T0 = 1_700_000_000_000  # event time, epoch ms
MINUTE = timedelta(minutes=1)


def index_key(expires_ms: int, user: bytes = b"k") -> bytes:
    return struct.pack(">Q", expires_ms) + user


def open_partition(cls: type[RocksDBStorePartition], path: Path, budget: int = 150_000) -> Any:
    return cls(str(path), options=RocksDBOptions(max_evictions_per_flush=budget))


def keys(partition: Any, cf: str) -> list[bytes]:
    return sorted(key for key, _ in partition.get_or_create_column_family(cf).items())


def flush(partition: Any, writes: dict[str, int], ttl: timedelta = MINUTE) -> None:
    """One checkpoint's flush: each key written at its event time (ms), then quix's prepare and write."""
    tx = partition.begin()
    for key, at in writes.items():
        tx.set(key, 1, prefix=b"p", timestamp=at, ttl=ttl)
    tx.prepare()
    tx.flush()


@pytest.fixture
def floored(tmp_path: Path) -> Iterator[Any]:
    partition = open_partition(FlooredPartition, tmp_path / "floored")
    yield partition
    partition.close()


@pytest.mark.parametrize(
    ("floor", "walked_to", "written", "expected"),
    [
        (None, None, [], None),
        (None, None, [index_key(5)], None),
        (index_key(3), None, [], index_key(3)),
        (None, index_key(7), [], index_key(7)),
        (None, index_key(7), [index_key(9)], index_key(7)),
        (index_key(3), index_key(7), [index_key(5), index_key(9)], index_key(5)),
        (index_key(3), index_key(7), [index_key(1)], index_key(1)),
    ],
    ids=[
        "never-swept",
        "never-swept-writes",
        "walk-empty",
        "first-walk",
        "written-above",
        "written-between",
        "written-below-old-floor",
    ],
)
def test_the_next_floor_is_the_walks_end_unless_the_flush_writes_below_it(
    floor: bytes | None, walked_to: bytes | None, written: list[bytes], expected: bytes | None
) -> None:
    assert next_floor(floor, walked_to, written) == expected


def scripted_run(cls: type[RocksDBStorePartition], path: Path, seed: int, budget: int) -> list[Any]:
    """Random writes, late writes, deletes and checkpoints that never flushed; both CFs after each."""
    rng, at, seen = random.Random(seed), T0, []  # noqa: S311 (a reproducible script, not a secret)
    partition = open_partition(cls, path, budget)
    for step in range(60):
        tx = partition.begin()
        for _ in range(rng.randrange(1, 25)):
            key = f"k{rng.randrange(150)}"
            if rng.random() < 0.1:
                tx.delete(key, prefix=b"p")
            else:
                late = rng.choice([0, 0, 0, 5_000, 50_000, 200_000])
                ttl = timedelta(seconds=rng.choice([1, 3, 10, 60]))
                tx.set(key, step, prefix=b"p", timestamp=at - late, ttl=ttl)
        tx.prepare()
        if rng.random() > 0.1:  # else the checkpoint failed after prepare
            tx.flush()
        at += rng.choice([0, 300, 700, 5_000])
        seen.append((keys(partition, "default"), keys(partition, TTL_INDEX_CF_NAME)))
    partition.close()
    return seen


@pytest.mark.parametrize("budget", [1, 3, 1_000])
@pytest.mark.parametrize("seed", range(6))
def test_a_floored_sweep_keeps_and_deletes_exactly_what_quix_own_sweep_does(
    tmp_path: Path, seed: int, budget: int
) -> None:
    plain = scripted_run(RocksDBStorePartition, tmp_path / "plain", seed, budget)
    assert scripted_run(FlooredPartition, tmp_path / "floored", seed, budget) == plain
    assert any(len(index) < len(main) + 150 for main, index in plain)  # the sweep did delete


def test_the_floor_moves_past_what_the_sweep_evicted(floored: Any) -> None:
    flush(floored, {f"old{i}": T0 for i in range(5)})
    flush(floored, {"new": T0 + 2 * 60_000})  # the five expired at T0 + 1 min: swept here
    assert keys(floored, "default") == [b'p|"new"']
    assert floored.sweep_floor is not None
    assert floored.sweep_floor >= index_key(T0 + 60_000, b'p|"old4"')


def test_a_late_call_written_below_the_floor_is_still_swept(floored: Any) -> None:
    flush(floored, {f"old{i}": T0 for i in range(5)})
    flush(floored, {"new": T0 + 2 * 60_000})
    floor = floored.sweep_floor
    flush(floored, {"late": T0 - 30_000})  # expires before the floor's entries did
    assert floored.sweep_floor is not None and floor is not None and floored.sweep_floor < floor
    flush(floored, {"later": T0 + 3 * 60_000})
    assert b'p|"late"' not in keys(floored, "default")
    assert not [k for k in keys(floored, TTL_INDEX_CF_NAME) if k.endswith(b'"late"')]


def test_a_failed_write_starts_the_next_sweep_from_the_first_key(
    floored: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    flush(floored, {f"old{i}": T0 for i in range(5)})
    flush(floored, {"new": T0 + 2 * 60_000})
    assert floored.sweep_floor is not None

    def refuse(batch: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(RocksDBStorePartition, "_write", lambda self, batch: refuse(batch))
    with pytest.raises(OSError, match="disk full"):
        flush(floored, {"lost": T0 + 2 * 60_000})
    assert floored.sweep_floor is None


def test_a_checkpoint_that_never_flushed_does_not_move_the_floor(floored: Any) -> None:
    flush(floored, {f"old{i}": T0 for i in range(5)})
    flush(floored, {"new": T0 + 2 * 60_000})
    floor = floored.sweep_floor
    tx = floored.begin()
    tx.set("next", 1, prefix=b"p", timestamp=T0 + 10 * 60_000, ttl=MINUTE)
    tx.prepare()  # its sweep walked on, but the checkpoint failed before the write
    assert floored.sweep_floor == floor
    flush(floored, {"late": T0 - 30_000})
    assert floored.sweep_floor is not None and floor is not None and floored.sweep_floor < floor


def test_a_write_made_outside_a_flush_forgets_the_floor(floored: Any) -> None:
    flush(floored, {f"old{i}": T0 for i in range(5)})
    flush(floored, {"new": T0 + 2 * 60_000})
    assert floored.sweep_floor is not None
    batch = WriteBatch(raw_mode=True)
    batch.put(index_key(T0 - 1, b'p|"rebuilt"'), b"", floored.get_column_family_handle(TTL_INDEX_CF_NAME))
    floored._write(batch)  # as recovery, rebuilds and backfills do
    assert floored.sweep_floor is None


def test_install_makes_plain_rocksdb_stores_open_floored_partitions(tmp_path: Path) -> None:
    store = RocksDBStore(name="s", stream_id="calls", base_dir=str(tmp_path))
    assert install({"calls": {"s": store}}) == 1
    assert isinstance(store, FlooredStore)
    assert isinstance(store.assign_partition(0), FlooredPartition)
    store.revoke_partition(0)
    assert install({"calls": {"s": store}}) == 0


def test_a_floored_partition_reads_what_quix_reads(tmp_path: Path) -> None:
    plain = open_partition(RocksDBStorePartition, tmp_path / "plain")
    floored = open_partition(FlooredPartition, tmp_path / "floored")
    try:
        for partition in (plain, floored):
            flush(partition, {"a": T0})
        for key in (b'p|"a"', b'p|"missing"'):
            assert floored.get(key) == plain.get(key)
        assert floored.get(b'p|"missing"') is Marker.UNDEFINED
        assert floored.get(b'p|"a"').endswith(b"1")
    finally:
        plain.close()
        floored.close()
