"""RocksDB point reads of dedupe-shaped keys with quix's options, with and without the memtable bloom.

    python -m bench.rocksdb_gets [--keys 2000000] [--rounds 2]

Writes `--keys` keys shaped like the processor's dedupe keys (licensee prefix + 16 hex digits) in
batches of 10,000 into a fresh database, then times 200,000 reads of absent keys (a new call's dedupe
read) and 100,000 of stored ones (what the TTL sweep reads before it expires a key). Alternates quix's
`RocksDBOptions` and the processor's `MemtableBloomOptions` `--rounds` times; prints JSON (µs per read).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import rocksdict
from quixstreams.state.rocksdb import RocksDBOptions

from services.processor.rocksdb_options import MemtableBloomOptions

ABSENT_READS, STORED_READS = 200_000, 100_000


def key(index: int) -> bytes:
    """The index-th dedupe-shaped key."""
    digest = random.Random(index).getrandbits(64)  # noqa: S311 - a reproducible workload
    return b'licensee-%02d|"d:%016x"' % (index % 50, digest)


def reads(options: RocksDBOptions, keys: int, directory: Path) -> dict[str, float]:
    """µs per read of absent and of stored keys in a fresh database of `keys` keys."""
    db = rocksdict.Rdict(str(directory), options=options.to_options())
    try:
        batch = rocksdict.WriteBatch(raw_mode=True)
        for index in range(keys):
            batch.put(key(index), b"\x00" * 16)
            if index % 10_000 == 9_999:
                db.write(batch)
                batch = rocksdict.WriteBatch(raw_mode=True)
        db.write(batch)
        absent = [key(keys + i) for i in range(ABSENT_READS)]
        stored = [key(random.randrange(keys)) for _ in range(STORED_READS)]  # noqa: S311
        return {"absent_us": _timed(db, absent), "stored_us": _timed(db, stored)}
    finally:
        db.close()


def _timed(db: Any, keys: list[bytes]) -> float:
    started = time.perf_counter()
    for one in keys:
        db.get(one, None)
    return round((time.perf_counter() - started) / len(keys) * 1e6, 2)


def main() -> None:
    """Run the alternated rounds; print JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keys", type=int, default=2_000_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    results: dict[str, list[dict[str, float]]] = {"quix": [], "memtable_bloom": []}
    for _ in range(args.rounds):
        for name, options in (("quix", RocksDBOptions()), ("memtable_bloom", MemtableBloomOptions())):
            directory = Path(tempfile.mkdtemp(prefix="tollgate-rocksdb-gets-"))
            try:
                results[name].append(reads(options, args.keys, directory))
            finally:
                shutil.rmtree(directory, ignore_errors=True)
    print(json.dumps({"keys": args.keys, **results}, indent=2))


if __name__ == "__main__":
    main()
