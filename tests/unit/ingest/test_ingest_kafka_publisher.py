"""The Kafka publisher drops a producer that gave up on a record by itself, so an outage ends by itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest
from kafka.errors import KafkaTimeoutError
from kafka.future import Future

from services.ingest import kafka_publisher
from services.ingest.errors import PublishFailed
from services.ingest.kafka_publisher import KafkaPublisher
from services.ingest.settings import IngestSettings
from services.ingest.validation import Record


class FakeFuture(Future):  # type: ignore[misc]
    """A record's future: the test fails it, as kafka-python's sender thread would."""

    def get(self, timeout: float | None = None) -> Any:
        if not self.is_done:
            raise KafkaTimeoutError(f"Timeout after waiting for {timeout} secs.")
        if self.exception is not None:
            raise self.exception
        return self.value


class FakeProducer:
    """Hands out futures that nobody acknowledges."""

    made: ClassVar[list[FakeProducer]] = []

    def __init__(self, **config: Any) -> None:
        self.futures: list[FakeFuture] = []
        self.closed = False
        FakeProducer.made.append(self)

    def send(self, topic: str, key: bytes, value: bytes) -> FakeFuture:
        self.futures.append(FakeFuture())
        return self.futures[-1]

    def close(self, timeout: float | None = None) -> None:
        self.closed = True


@pytest.fixture
def publisher(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> KafkaPublisher:
    tokens = tmp_path / "tokens.json"
    tokens.write_text('{"tokens": []}')
    env = {"TOLLGATE_KAFKA_BOOTSTRAP": "127.0.0.1:9092", "TOLLGATE_TOKENS_FILE": str(tokens),
           "TOLLGATE_INGEST_PRODUCE_TIMEOUT_SECONDS": "0.1"}  # fmt: skip
    FakeProducer.made = []
    monkeypatch.setattr(kafka_publisher, "KafkaProducer", FakeProducer)
    return KafkaPublisher(IngestSettings.from_env(env))


RECORDS = [Record(key=b"omnisoft", value=b"{}"), Record(key=b"pebble", value=b"{}")]


def _publish(publisher: KafkaPublisher) -> None:
    publisher._publish_blocking(RECORDS, deadline=0.0)


def test_a_request_that_waited_too_long_keeps_the_producer(publisher: KafkaPublisher) -> None:
    with pytest.raises(PublishFailed):
        _publish(publisher)  # nobody acknowledged within the wait: the producer is still trying
    with pytest.raises(PublishFailed):
        _publish(publisher)
    assert len(FakeProducer.made) == 1


def test_a_record_the_producer_gave_up_on_makes_the_next_request_build_a_new_producer(
    publisher: KafkaPublisher,
) -> None:
    with pytest.raises(PublishFailed):
        _publish(publisher)
    first = FakeProducer.made[0]
    # Long after the request gave up waiting, the record's batch expires in the producer.
    first.futures[0].failure(KafkaTimeoutError("Expiring 1 record(s) for tollgate.api-calls.v1-3"))
    with pytest.raises(PublishFailed):
        _publish(publisher)
    assert len(FakeProducer.made) == 2 and FakeProducer.made[1] is not first
    # The old producer's other records failing too leaves the new one alone.
    first.futures[1].failure(KafkaTimeoutError("Expiring 1 record(s) for tollgate.api-calls.v1-5"))
    with pytest.raises(PublishFailed):
        _publish(publisher)
    assert len(FakeProducer.made) == 2
