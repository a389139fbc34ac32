"""The Kafka adapter of the publisher port: kafka-python, acks=all, idempotent, bounded waits."""

from __future__ import annotations

import logging
import socket
import struct
import threading
import time
from collections.abc import Sequence
from typing import Any

import anyio
from kafka import KafkaProducer
from kafka.errors import KafkaError, KafkaTimeoutError

from services.ingest.errors import PublishFailed
from services.ingest.partitioner import RememberingPartitioner
from services.ingest.settings import IngestSettings
from services.ingest.validation import Record

log = logging.getLogger(__name__)

_RECONNECT_SECONDS = 1.0
_READY_CACHE_SECONDS = 1.0
# ApiVersions v0 (api key 18): every broker answers it before any authentication or metadata.
_PROBE_CORRELATION = 0x7467
_CLIENT_ID = b"tollgate-ingest-probe"
_PROBE = struct.pack(">hhih", 18, 0, _PROBE_CORRELATION, len(_CLIENT_ID)) + _CLIENT_ID
_PROBE_REQUEST = struct.pack(">i", len(_PROBE)) + _PROBE


def broker_answers(bootstrap: str, timeout: float) -> bool:
    """Whether some bootstrap server answers a Kafka ApiVersions request within `timeout` seconds."""
    for server in bootstrap.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            with socket.create_connection((host, int(port)), timeout=timeout) as sock:
                sock.sendall(_PROBE_REQUEST)
                header = sock.recv(8, socket.MSG_WAITALL)
        except (OSError, ValueError):
            continue
        if len(header) == 8 and struct.unpack(">ii", header)[1] == _PROBE_CORRELATION:
            return True
    return False


class KafkaPublisher:
    """Publishes records with acks=all and answers only when every one is acknowledged or the wait is over."""

    def __init__(self, settings: IngestSettings, **overrides: Any) -> None:
        self.settings = settings
        self._overrides = overrides
        self._producer: KafkaProducer | None = None
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._next_attempt = 0.0
        self._ready: tuple[float, bool] = (0.0, False)

    def _config(self) -> dict[str, Any]:
        timeout_ms = int(self.settings.produce_timeout_seconds * 1000)
        config: dict[str, Any] = {
            "bootstrap_servers": self.settings.kafka_bootstrap.split(","),
            "client_id": "tollgate-ingest",
            "acks": "all",
            "enable_idempotence": True,
            # <= 5 keeps ordering per partition with idempotence on.
            "max_in_flight_requests_per_connection": 5,
            "linger_ms": 5,
            "batch_size": 256 * 1024,
            "partitioner": RememberingPartitioner(),
            "compression_type": self.settings.compression or None,
            "request_timeout_ms": timeout_ms,
            # Records we gave up on expire soon after, so an outage cannot fill the buffer for minutes.
            "delivery_timeout_ms": 3 * timeout_ms + 5,
            "max_block_ms": timeout_ms,
            "bootstrap_timeout_ms": min(timeout_ms, 2000),
            # Reconnect quickly when the broker comes back (the default backs off up to 30 s).
            "reconnect_backoff_max_ms": 1000,
            **self.settings.kafka_security.kafka_python(),
        }
        config.update(self._overrides)
        return config

    def _get(self) -> KafkaProducer:
        """The producer, built lazily: kafka-python's constructor fails when no broker answers."""
        with self._lock:
            if self._producer is not None:
                return self._producer
            if time.monotonic() < self._next_attempt:
                raise PublishFailed("Kafka is not reachable yet")
            try:
                self._producer = KafkaProducer(**self._config())
            except (KafkaError, OSError) as exc:
                self._next_attempt = time.monotonic() + _RECONNECT_SECONDS
                raise PublishFailed(
                    f"cannot connect to Kafka at {self.settings.kafka_bootstrap}: {exc!r}"
                ) from exc
            log.info("connected to Kafka at %s", self.settings.kafka_bootstrap)
            return self._producer

    def _discard(self, producer: KafkaProducer) -> None:
        """Drop a producer that failed other than by timeout; the next request builds a fresh one."""
        with self._lock:
            if self._producer is producer:
                self._producer = None
        threading.Thread(target=producer.close, kwargs={"timeout": 0}, daemon=True).start()

    def _undelivered(self, producer: KafkaProducer, exc: BaseException) -> None:
        """A record the producer gave up on by itself (its batch expired in a broker outage longer than
        the delivery timeout) makes kafka-python reset its idempotent producer id, and that producer never
        delivered again once the broker was back (the chaos tier's broker restart): drop it, so the next
        request builds a fresh one. Runs in the producer's thread; only the first failure drops it."""
        with self._lock:
            if self._producer is not producer:
                return
        log.warning("the Kafka producer gave up on a record (%r); the next request reconnects", exc)
        self._discard(producer)

    def _publish_blocking(self, records: Sequence[Record], deadline: float) -> None:
        producer = self._get()
        futures: list[Any] = []
        try:
            # One request appends at a time: concurrent requests' send loops fought over the accumulator's
            # partition locks and the GIL, and a 1,000-event batch cost 1.5 times the CPU per event.
            # A send blocked on metadata or a full buffer holds it: the others wait no longer than their
            # own deadline.
            if not self._send_lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
                raise PublishFailed("Kafka did not take the records in time")
            try:
                futures = [producer.send(self.settings.topic, key=r.key, value=r.value) for r in records]
            finally:
                self._send_lock.release()
            for future in futures:
                future.get(timeout=max(0.0, deadline - time.monotonic()))
        except KafkaTimeoutError as exc:
            # The request gives up, but its records stay buffered: one that later expires there resets
            # the producer (see _undelivered), so watch those from now on. Watching every record from
            # the start was about 4% of the process's CPU.
            for future in futures:
                future.add_errback(self._undelivered, producer)
            raise PublishFailed(f"Kafka did not acknowledge in time: {exc}") from exc
        except KafkaError as exc:
            self._discard(producer)
            raise PublishFailed(f"Kafka refused the write: {exc!r}") from exc

    async def publish(self, records: Sequence[Record]) -> None:
        """Send every record and wait, at most the produce timeout, until all are acknowledged."""
        timeout = self.settings.produce_timeout_seconds
        deadline = time.monotonic() + timeout
        # The worker thread bounds itself; this bound also covers a send() blocked on metadata.
        with anyio.move_on_after(timeout + 0.5) as scope:
            await anyio.to_thread.run_sync(self._publish_blocking, records, deadline, abandon_on_cancel=True)
        if scope.cancelled_caught:
            raise PublishFailed("Kafka did not acknowledge in time")

    def _check_ready(self) -> bool:
        # The raw probe speaks plaintext Kafka; over TLS the producer's own bootstrap decides.
        plaintext = not self.settings.kafka_security.uses_ssl
        if plaintext and not broker_answers(self.settings.kafka_bootstrap, timeout=0.5):
            return False
        try:
            self._get()
        except PublishFailed:
            return False
        return True

    async def ready(self) -> bool:
        """Whether a broker answers and the producer is built; cached for a second to keep probes cheap."""
        checked_at, value = self._ready
        if time.monotonic() - checked_at < _READY_CACHE_SECONDS:
            return value
        value = await anyio.to_thread.run_sync(self._check_ready, abandon_on_cancel=True)
        self._ready = (time.monotonic(), value)
        return value

    def warm_up(self) -> None:
        """Try to connect now, so the first request does not pay for it; failure is only logged."""
        try:
            self._get()
        except PublishFailed as exc:
            log.warning("%s; will retry on demand", exc)

    def close(self) -> None:
        """Flush buffered records and close the producer."""
        with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            timeout = self.settings.produce_timeout_seconds
            try:
                producer.flush(timeout=timeout)
            except KafkaError as exc:
                log.warning("flush on close failed: %r", exc)
            producer.close(timeout=timeout)
