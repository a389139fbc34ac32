"""The memtable bloom changes how RocksDB searches, never what a read returns."""

from __future__ import annotations

from pathlib import Path

import pytest
import rocksdict
from quixstreams.state.rocksdb import RocksDBOptions

from services.processor.rocksdb_options import MemtableBloomOptions


@pytest.mark.parametrize(
    "options", [RocksDBOptions(), MemtableBloomOptions(), MemtableBloomOptions(memtable_bloom_ratio=0.0)]
)
def test_stored_keys_read_back_and_absent_ones_read_as_absent_with_either_options(
    options: RocksDBOptions, tmp_path: Path
) -> None:
    db = rocksdict.Rdict(str(tmp_path / "db"), options=options.to_options())
    try:
        batch = rocksdict.WriteBatch(raw_mode=True)
        for n in range(5_000):
            batch.put(b"licensee-1|d:%016x" % n, b"%d" % n)
        db.write(batch)
        db.delete(b"licensee-1|d:%016x" % 7)
        assert db.get(b"licensee-1|d:%016x" % 4_999) == b"4999"
        assert db.get(b"licensee-1|d:%016x" % 7, None) is None  # deleted
        assert db.get(b"licensee-1|d:%016x" % 5_000, None) is None  # never written
        assert db.get(b"licensee-2|d:%016x" % 1, None) is None  # another licensee's prefix
    finally:
        db.close()


def test_the_processor_options_are_quixs_with_a_tenth_of_each_memtable_for_its_bloom() -> None:
    options = MemtableBloomOptions()
    assert options.memtable_bloom_ratio == 0.1
    assert options.write_buffer_size == RocksDBOptions().write_buffer_size
