"""Every worker's full view of a topic, kept current by a background thread: the agreements (and, in
`violations.py`, the alerts).

A group-less consumer assigned every partition reads from the beginning, so each worker sees every
agreement whatever input partitions it owns. Workers wait until the view reached the end offsets seen
at start-up before they process calls (else every licensee would look `agreement.missing`).
Versions of one licensee are kept side by side; the version in force at a call's event time judges
it, so a renewal does not re-judge earlier calls under new terms.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from services.core.agreements import Agreement, agreement_from_cloudevent
from services.core.errors import ValidationFailed
from services.core.events import loads
from services.processor.domain.versions import Versions
from services.processor.errors import AgreementsNotReady, ProcessorError

log = logging.getLogger(__name__)


class FollowFailed(ProcessorError):
    """The reader's client reported an error on a record; the reader reconnects and reads on."""


class TopicFollower:
    """Reads a whole topic from the beginning with a consumer that joins no group (confluent-kafka: its
    I/O runs in librdkafka's threads, off the GIL) in a daemon thread, and keeps following it; `ready`
    is set once it reached the end offsets seen when it started."""

    def __init__(
        self, consumer_factory: Callable[[], Any], topic: str, apply: Callable[[Any, Any], None]
    ) -> None:
        self.consumer_factory = consumer_factory
        self.topic = topic
        self.apply = apply
        self.ready = threading.Event()
        self.last_error: str = ""
        self._stop = threading.Event()

    def start(self) -> None:
        """Start following the topic."""
        threading.Thread(target=self._run, name=f"follow-{self.topic}", daemon=True).start()

    def stop(self) -> None:
        """Stop following (the thread ends after its current poll)."""
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._follow()
            except Exception as exc:  # any client failure: log, reconnect; what was read stays
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("reader of %s failed, retrying: %s", self.topic, exc)
                self._stop.wait(1.0)

    def _follow(self) -> None:
        from confluent_kafka import OFFSET_BEGINNING, TopicPartition  # type: ignore[import-untyped]

        consumer = self.consumer_factory()
        try:
            partitions = [TopicPartition(self.topic, p) for p in self._partitions(consumer)]
            # The high watermark, not the last stable offset: a reader at it has seen every committed
            # record up to start-up, and `position` steps over transaction markers.
            ends = {tp.partition: consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in partitions}
            consumer.assign([TopicPartition(self.topic, tp.partition, OFFSET_BEGINNING) for tp in partitions])
            while not self._stop.is_set():
                for message in consumer.consume(num_messages=1000, timeout=0.5):
                    if message.error() is not None:
                        raise FollowFailed(str(message.error()))
                    self.apply(message.key(), message.value())
                if not self.ready.is_set() and self._caught_up(consumer, partitions, ends):
                    log.info("reader of %s caught up", self.topic)
                    self.ready.set()
        finally:
            consumer.close()

    @staticmethod
    def _caught_up(consumer: Any, partitions: list[Any], ends: dict[int, int]) -> bool:
        pending = [tp for tp in partitions if ends[tp.partition] > 0]
        return all(tp.offset >= ends[tp.partition] for tp in consumer.position(pending)) if pending else True

    def _partitions(self, consumer: Any) -> list[int]:
        while not self._stop.is_set():
            found = consumer.list_topics(self.topic, timeout=10).topics.get(self.topic)
            if found is not None and found.error is None and found.partitions:
                return sorted(found.partitions)
            log.info("waiting for topic %s to exist", self.topic)
            self._stop.wait(0.5)
        return []


class AgreementsView:
    """licensee_id -> agreement versions, read from the compacted agreements topic."""

    def __init__(self, consumer_factory: Callable[[], Any], topic: str) -> None:
        self.topic = topic
        self.versions = Versions()
        self.follower = TopicFollower(consumer_factory, topic, self._apply)
        self.ready = self.follower.ready

    def get(self, licensee_id: str, at: datetime) -> Agreement | None:
        """The licensee's agreement in force at `at`, if any."""
        return self.versions.in_force(licensee_id, at)

    def start(self) -> None:
        """Start following the topic."""
        self.follower.start()

    def stop(self) -> None:
        """Stop following."""
        self.follower.stop()

    def wait_ready(self, timeout: float) -> None:
        """Block until caught up with the topic's end offsets at start-up."""
        if not self.ready.wait(timeout):
            why = f" (last error: {self.follower.last_error})" if self.follower.last_error else ""
            raise AgreementsNotReady(
                f"agreements topic {self.topic} not read to its end in {timeout:.0f}s{why}"
            )

    def _apply(self, key: bytes | None, value: bytes | None) -> None:
        licensee = key.decode("utf-8", errors="replace") if key else None
        if value is None:
            if licensee:
                self.versions.drop(licensee)
            return
        try:
            agreement = agreement_from_cloudevent(loads(value))
        except (ValidationFailed, ValueError, KeyError, TypeError) as exc:
            log.error("ignoring invalid agreement for key %r: %s", licensee, exc)
            return
        self.versions.put(agreement)
        log.info("agreement for %s from %s applied", agreement.licensee_id, agreement.effective_from)
