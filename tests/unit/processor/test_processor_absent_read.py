"""quix's read without its layers for absent keys (services/processor/absent_read.py), on real RocksDB files:
every answer, and the event-time high-water it leaves, is quix's own."""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from quixstreams.state.rocksdb import RocksDBOptions
from quixstreams.state.rocksdb.partition import RocksDBStorePartition

from services.processor import absent_read
from services.processor.sweep_floor import FlooredPartition

T0 = 1_700_000_000_000  # event time, epoch ms


def scripted_reads(cls: type[RocksDBStorePartition], path: Path, seed: int, fast: bool) -> list[Any]:
    """Random TTL and plain writes, deletes, reads (of staged, stored, expired and absent keys) and
    checkpoints, some never flushed; each read's answer and the high-water after it."""
    rng, at, seen = random.Random(seed), T0, []  # noqa: S311 (a reproducible script, not a secret)
    partition = cls(str(path), options=RocksDBOptions())
    for step in range(40):
        tx = partition.begin()
        for _ in range(rng.randrange(1, 30)):
            key, roll = f"k{rng.randrange(60)}", rng.random()
            stamp = at - rng.choice([0, 0, 2_000, 40_000])
            if roll < 0.1:
                tx.delete(key, prefix=b"p")
            elif roll < 0.4 and step >= 3:  # the store flips into TTL mode at its first ttl write
                tx.set(key, step, prefix=b"p", timestamp=stamp, ttl=timedelta(seconds=rng.choice([1, 5, 30])))
            elif roll < 0.45:
                tx.set(key, [step, "plain"], prefix=b"p", timestamp=stamp)
            else:
                read = absent_read.get(tx, key, b"p", stamp) if fast else tx.get(key, b"p", timestamp=stamp)
                seen.append((step, key, read, partition.high_water_ms))
        tx.prepare()
        if rng.random() > 0.1:  # else the checkpoint failed after prepare
            tx.flush()
        at += rng.choice([0, 500, 3_000, 20_000])
    partition.close()
    return seen


@pytest.mark.parametrize("cls", [RocksDBStorePartition, FlooredPartition])
@pytest.mark.parametrize("seed", range(5))
def test_every_read_answers_and_advances_the_high_water_as_quix_own_read(
    tmp_path: Path, seed: int, cls: type[RocksDBStorePartition]
) -> None:
    quix = scripted_reads(cls, tmp_path / "quix", seed, fast=False)
    assert scripted_reads(cls, tmp_path / "fast", seed, fast=True) == quix
    answers = [read for _, _, read, _ in quix]
    assert None in answers and any(read is not None for read in answers)  # both kinds were read


class Other:
    """Not quix's transaction: the read is its own."""

    def get(self, key: str, prefix: bytes, timestamp: int | None = None) -> Any:
        return ("other", key, prefix, timestamp)


def test_a_transaction_that_is_not_quix_plain_one_answers_its_own_reads() -> None:
    assert absent_read.get(Other(), "d:1", b"p", 5) == ("other", "d:1", b"p", 5)


def test_a_closed_transaction_still_raises_as_quix_does(tmp_path: Path) -> None:
    partition = RocksDBStorePartition(str(tmp_path / "p"), options=RocksDBOptions())
    try:
        tx = partition.begin()
        tx.set("k", 1, prefix=b"p", timestamp=T0, ttl=timedelta(seconds=5))
        tx.prepare()
        tx.flush()
        with pytest.raises(Exception, match=r"(?i)transaction"):
            absent_read.get(tx, "absent", b"p", T0)
    finally:
        partition.close()
