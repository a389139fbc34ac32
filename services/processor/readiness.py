"""Wait until every topic the worker uses answers offset requests before quix assigns partitions.

A changelog topic quix has just created can answer `NOT_LEADER_FOR_PARTITION` for a moment, and quix's
partition assignment fails the whole worker on it (seen on a fresh stack). Asking for end offsets with
retries, before the app starts, waits out that moment.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from services.processor.errors import ProcessorError

log = logging.getLogger(__name__)


class TopicsNotReady(ProcessorError):
    """A topic's partitions still had no leader answering when the wait ran out."""


def wait_for_leaders(
    consumer_factory: Callable[[], Any],
    wanted: Callable[[str], bool],
    timeout: float,
    sleep: Callable[[float], None] = time.sleep,
) -> list[str]:
    """Return the names of the matching topics once each answered an end-offsets request."""
    from kafka import TopicPartition

    deadline = time.monotonic() + timeout
    consumer = consumer_factory()
    try:
        names = sorted(name for name in consumer.topics() if wanted(name))
        for name in names:
            partitions = [TopicPartition(name, p) for p in sorted(consumer.partitions_for_topic(name) or ())]
            _retry(functools.partial(consumer.end_offsets, partitions), name, deadline, sleep)
        return names
    finally:
        consumer.close()


def _retry(ask: Callable[[], object], name: str, deadline: float, sleep: Callable[[float], None]) -> None:
    while True:
        try:
            ask()
            return
        except Exception as exc:  # a leader not elected yet shows up as various client errors
            if time.monotonic() > deadline:
                raise TopicsNotReady(f"topic {name} has no answering leader: {exc}") from exc
            log.info("waiting for the leaders of %s: %s", name, exc)
            sleep(0.5)


def used_by(app_id: str, topics: Iterable[str]) -> Callable[[str], bool]:
    """The worker's topics: the ones it names, and quix's changelogs (named after the consumer group)."""
    named = set(topics)
    return lambda name: name in named or app_id in name
