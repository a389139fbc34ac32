"""Which changelog producers `changelog_produce.install` turns into the fast one, and that a floored store's
partitions get it (no broker needed)."""

from __future__ import annotations

from pathlib import Path

from quixstreams.state.recovery import ChangelogProducer, ChangelogProducerFactory

from services.processor.changelog_produce import FastChangelogProducer, install
from services.processor.sweep_floor import FlooredStore


class Custom(ChangelogProducer):
    """Somebody else's subclass: its produce is not ours to replace."""


def test_quix_own_changelog_producer_becomes_the_fast_one() -> None:
    plain = ChangelogProducer("changelog", 0, None)  # type: ignore[arg-type]  # never produces here
    assert install(plain)
    assert type(plain) is FastChangelogProducer
    assert (plain.changelog_name, plain.partition) == ("changelog", 0)


def test_a_subclass_or_a_missing_producer_is_left_alone() -> None:
    custom = Custom("changelog", 0, None)  # type: ignore[arg-type]
    assert not install(custom)
    assert type(custom) is Custom
    assert not install(None)


def test_a_floored_store_opens_its_partitions_with_the_fast_changelog_producer(tmp_path: Path) -> None:
    factory = ChangelogProducerFactory("changelog", producer=None)  # type: ignore[arg-type]  # never produces
    store = FlooredStore("licensees", "calls", str(tmp_path), changelog_producer_factory=factory)
    partition = store.create_new_partition(3)
    try:
        produces = partition._changelog_producer
        assert type(produces) is FastChangelogProducer
        assert (produces.changelog_name, produces.partition) == ("changelog", 3)
    finally:
        partition.close()
