"""Absent keys remembered until the next write (sweep_floor.FlooredPartition.get), on real RocksDB files."""

from __future__ import annotations

import ast
import inspect
import random
import textwrap
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from quixstreams.state.metadata import Marker
from quixstreams.state.rocksdb import RocksDBOptions
from quixstreams.state.rocksdb.partition import TTL_INDEX_CF_NAME, RocksDBStorePartition
from rocksdict import WriteBatch

from services.processor.sweep_floor import FlooredPartition

T0 = 1_700_000_000_000  # event time, epoch ms
HOUR = timedelta(hours=1)


def open_partition(cls: type[RocksDBStorePartition], path: Path) -> Any:
    return cls(str(path), options=RocksDBOptions())


def contents(partition: Any) -> tuple[list[Any], list[Any]]:
    """Both column families, key-sorted."""
    return tuple(  # type: ignore[return-value]
        sorted(partition.get_or_create_column_family(cf).items()) for cf in ("default", TTL_INDEX_CF_NAME)
    )


@pytest.fixture
def floored(tmp_path: Path) -> Iterator[Any]:
    partition = open_partition(FlooredPartition, tmp_path / "floored")
    yield partition
    partition.close()


class CountingFamily:
    """A column family that counts its point reads."""

    def __init__(self, family: Any) -> None:
        self.family, self.reads = family, 0

    def get(self, key: bytes, default: Any = None) -> Any:
        self.reads += 1
        return self.family.get(key, default=default)


def test_a_new_key_read_then_staged_with_a_ttl_reaches_rocksdb_once(floored: Any) -> None:
    first = floored.begin()
    first.set("d:first", 1, prefix=b"p", timestamp=T0, ttl=HOUR)  # the store's first ttl write stamps it
    first.prepare()
    first.flush()
    assert floored.uses_ttl_stamps
    family = CountingFamily(floored.get_or_create_column_family("default"))
    original = floored.get_or_create_column_family
    floored.get_or_create_column_family = lambda cf: family if cf == "default" else original(cf)
    tx = floored.begin()
    assert tx.get("d:new", prefix=b"p") is None
    tx.set("d:new", 1, prefix=b"p", timestamp=T0, ttl=HOUR)  # quix reads the committed value again
    assert family.reads == 1


def test_a_key_read_as_absent_is_found_once_a_flush_wrote_it(floored: Any) -> None:
    assert floored.begin().get("k", prefix=b"p") is None
    tx = floored.begin()
    tx.set("k", 7, prefix=b"p", timestamp=T0, ttl=HOUR)
    tx.prepare()
    tx.flush()
    assert floored.begin().get("k", prefix=b"p") == 7


def test_a_key_read_as_absent_is_found_once_a_write_outside_a_flush_wrote_it(floored: Any) -> None:
    assert floored.get(b"raw") is Marker.UNDEFINED
    batch = WriteBatch(raw_mode=True)
    batch.put(b"raw", b"value", floored.get_column_family_handle("default"))
    floored._write(batch)  # as rebuilds and backfills write
    assert floored.get(b"raw") == b"value"


def test_a_key_read_as_absent_is_found_once_recovery_from_the_changelog_wrote_it(floored: Any) -> None:
    assert floored.get(b"recovered") is Marker.UNDEFINED
    floored.recover_from_changelog_message(b"recovered", b"value", "default", offset=0)
    assert floored.get(b"recovered") == b"value"


def _raw_writes(cls: type) -> set[str]:
    """The methods of `cls` that call a writing method of its RocksDB handle `self._db` directly."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    found = set()
    for method in ast.walk(tree):
        if not isinstance(method, ast.FunctionDef):
            continue
        for node in ast.walk(method):
            func = getattr(node, "func", None) if isinstance(node, ast.Call) else None
            if (
                isinstance(func, ast.Attribute)
                and func.attr in _WRITING
                and isinstance(func.value, ast.Attribute)
                and func.value.attr == "_db"
            ):
                found.add(method.name)
    return found


_WRITING = {"write", "put", "delete", "delete_range", "ingest_external_file", "__setitem__", "__delitem__"}


def test_quix_writes_its_rocksdb_only_through_write_and_one_metadata_marker() -> None:
    # The memo is forgotten in `_write`: a new quix that wrote default-CF keys any other way could hide
    # a stored dedupe key behind it (a call counted twice). `_set_backfill_in_progress` writes only
    # the metadata column family's marker. Upgrading quix-streams re-checks this.
    assert _raw_writes(RocksDBStorePartition) == {"_write", "_set_backfill_in_progress"}


def test_the_absent_keys_are_forgotten_beyond_their_limit(floored: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr("services.processor.sweep_floor.ABSENT_LIMIT", 3)
    for key in (b"a", b"b", b"c", b"d"):
        assert floored.get(key) is Marker.UNDEFINED
    assert floored._absent == {b"d"}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_reads_and_ttl_writes_leave_what_quix_own_partition_leaves(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)  # noqa: S311 - a test's script, not a secret
    plain = open_partition(RocksDBStorePartition, tmp_path / "plain")
    floored = open_partition(FlooredPartition, tmp_path / "floored")
    try:
        for checkpoint in range(12):
            seen = []
            transactions = [plain.begin(), floored.begin()]
            for n in range(40):
                key = f"d:{rng.randrange(200)}"  # new keys and refreshed ones, like dedupe and counters
                at = T0 + (checkpoint * 40 + n) * 60_000
                seen.append([tx.get(key, prefix=b"p") for tx in transactions])
                for tx in transactions:
                    tx.set(key, n, prefix=b"p", timestamp=at, ttl=HOUR)
            for tx in transactions:
                tx.prepare()
                tx.flush()
            assert all(pair[0] == pair[1] for pair in seen)
            assert contents(plain) == contents(floored)
    finally:
        plain.close()
        floored.close()
