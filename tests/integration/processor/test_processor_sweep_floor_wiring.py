"""A worker built by `bootstrap` sweeps its TTL index from a floor unless its settings say not to, and
opens its stores with the memtable bloom."""

from __future__ import annotations

from pathlib import Path

import pytest
from processor_support import Topics
from quixstreams.state.rocksdb import RocksDBStore

from services.processor.agreements_view import AgreementsView
from services.processor.app import bootstrap
from services.processor.metrics import ProcessorMetrics
from services.processor.rocksdb_options import MemtableBloomOptions
from services.processor.settings import ProcessorSettings
from services.processor.sweep_floor import FlooredStore

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(("switch", "expected"), [("true", FlooredStore), ("false", RocksDBStore)])
def test_a_worker_sweeps_from_a_floor_unless_told_not_to(
    broker: str, topics: Topics, tmp_path: Path, switch: str, expected: type
) -> None:
    environ = {
        **topics.env(),
        "TOLLGATE_KAFKA_BOOTSTRAP": broker,
        "TOLLGATE_PROCESSOR_DATA_DIR": str(tmp_path),
        "TOLLGATE_PROCESSOR_SWEEP_FROM_FLOOR": switch,
    }
    settings = ProcessorSettings.from_env(environ)
    worker = bootstrap(settings, ProcessorMetrics(10), AgreementsView(lambda: None, topics.agreements))
    try:
        stores = [s for by_name in worker.app._state_manager.stores.values() for s in by_name.values()]
        assert len(stores) >= 2  # the licensee store and the group store
        assert all(type(store) is expected for store in stores)
        assert isinstance(worker.app._config.rocksdb_options, MemtableBloomOptions)
    finally:
        if worker.ticks is not None:
            worker.ticks.close()
