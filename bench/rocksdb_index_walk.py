"""The TTL sweep's index walk, offline: rocksdict iterator steps from a floor while sweeps delete the front.

Usage: `python -m bench.rocksdb_index_walk [--entries N] [--rounds R] [--per P]`; prints JSON.

A column family of N index-like keys (8-byte expiry, then a dedupe key) is walked R times, each walk seeking
to the floor the last one reached and stepping P entries; then those P are deleted and P new ones are put at
the end, as a checkpoint's sweep and writes do. It times the seek (with the first entry) and the mean step,
to compare with what py-spy charges the worker's sweep at (BENCHMARKS.md, processor section).
"""

from __future__ import annotations

import argparse
import json
import statistics
import struct
import tempfile
import time
from typing import Any

from rocksdict import Options, Rdict, ReadOptions, WriteBatch


def index_key(expires_at: int, n: int) -> bytes:
    """An index entry's key: expiry (big-endian, so key order is expiry order), then the user key."""
    return struct.pack(">Q", expires_at) + b"d:lic-%02d:bench-%012d" % (n % 50, n)


def fill(db: Rdict, entries: int) -> None:
    batch = WriteBatch(raw_mode=True)
    for n in range(entries):
        batch.put(index_key(n, n), b"")
        if n % 100_000 == 99_999:
            db.write(batch)
            batch = WriteBatch(raw_mode=True)
    db.write(batch)


def walk(db: Rdict, floor: bytes, per: int, upper: int) -> tuple[float, float, list[bytes]]:
    """Seek to `floor`, step `per` entries past the first; seek seconds, seconds a step, the keys seen."""
    read_opt = ReadOptions()
    read_opt.set_iterate_upper_bound(struct.pack(">Q", upper))
    started = time.perf_counter()
    items = iter(db.items(from_key=floor, read_opt=read_opt))
    seen = [next(items)[0]]
    sought = time.perf_counter()
    for key, _ in items:
        seen.append(key)
        if len(seen) > per:
            break
    return sought - started, (time.perf_counter() - sought) / per, seen


def run(entries: int, rounds: int, per: int) -> dict[str, Any]:
    """The walk's seek and step times, medians over the first and the last tenth of the rounds."""
    with tempfile.TemporaryDirectory(prefix="tollgate-index-walk-") as path:
        options = Options(raw_mode=True)
        options.create_if_missing(True)
        db = Rdict(path, options=options)
        try:
            fill(db, entries)
            floor, written, seeks, steps = index_key(0, 0), entries, [], []
            for _ in range(rounds):
                seek, step, seen = walk(db, floor, per, written + 10**9)
                seeks.append(seek)
                steps.append(step)
                batch = WriteBatch(raw_mode=True)
                for key in seen[:per]:
                    batch.delete(key)
                for n in range(written, written + per):
                    batch.put(index_key(n, n), b"")
                db.write(batch)
                written, floor = written + per, seen[per]
        finally:
            db.close()
    tenth = max(1, rounds // 10)
    return {
        "entries": entries, "rounds": rounds, "per_walk": per,
        "first_tenth": {"seek_us": statistics.median(seeks[:tenth]) * 1e6,
                        "step_us": statistics.median(steps[:tenth]) * 1e6},
        "last_tenth": {"seek_us": statistics.median(seeks[-tenth:]) * 1e6,
                       "step_us": statistics.median(steps[-tenth:]) * 1e6},
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=2_000_000)
    parser.add_argument("--rounds", type=int, default=1500)
    parser.add_argument("--per", type=int, default=660, help="entries a walk steps over and deletes")
    args = parser.parse_args()
    print(json.dumps(run(args.entries, args.rounds, args.per), indent=2))


if __name__ == "__main__":
    main()
