"""Which changelog producers `changelog_produce.install` turns into the fast one, and that a floored store's
partitions get it (no broker needed)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from quixstreams.state.recovery import ChangelogProducer, ChangelogProducerFactory

from services.processor.changelog_produce import POLL_EVERY, FastChangelogProducer, install
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


class Librdkafka:
    """librdkafka's producer as the fast path calls it: what it was asked to produce, and its polls."""

    def __init__(self) -> None:
        self.produced: list[tuple[Any, ...]] = []
        self.polls: list[tuple[float, int]] = []

    def produce(self, topic: str, value: Any, key: Any, **options: Any) -> None:
        self.produced.append((topic, key, value, options["partition"], options["on_delivery"]))

    def poll(self, timeout: float) -> int:
        self.polls.append((timeout, len(self.produced)))
        return 0


class Internal:
    """quix's InternalProducer, reduced to what the fast path touches."""

    def __init__(self, inner: Librdkafka) -> None:
        self._producer = SimpleNamespace(_producer=inner)  # quix's Producer, around librdkafka's
        self.raised_for_error = 0

    def _raise_for_error(self) -> None:
        self.raised_for_error += 1

    def _on_delivery(self, err: Any, msg: Any) -> None:
        """quix's delivery callback (never called here)."""


def test_the_fast_path_polls_once_every_poll_every_records_and_checks_for_errors_on_each() -> None:
    inner = Librdkafka()
    internal = Internal(inner)
    changelog = ChangelogProducer("changelog", 2, internal)  # type: ignore[arg-type]
    assert install(changelog)
    for n in range(2 * POLL_EVERY + 1):
        changelog.produce(key=b"k%d" % n, value=b"v%d" % n, headers={"__column_family__": "default"})
    # Right after record POLL_EVERY and record 2 * POLL_EVERY, never blocking.
    assert inner.polls == [(0, POLL_EVERY), (0, 2 * POLL_EVERY)]
    assert internal.raised_for_error == 2 * POLL_EVERY + 1
    assert [(key, value) for _, key, value, _, _ in inner.produced] == [
        (b"k%d" % n, b"v%d" % n) for n in range(2 * POLL_EVERY + 1)
    ]
    assert {(topic, partition) for topic, _, _, partition, _ in inner.produced} == {("changelog", 2)}
    assert all(callback == internal._on_delivery for *_, callback in inner.produced)
