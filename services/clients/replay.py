"""Sending CloudEvents to Tollgate: to ingest over HTTP (batches; 503s and dropped connections are
retried), or straight to Kafka.

`tollgate replay` and the demo send through here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson

from services.core import topics
from services.core.errors import TollgateError, ValidationFailed
from services.core.schemas import API_CALL_TYPE, problems
from services.core.security import PLAINTEXT, KafkaSecurity

log = logging.getLogger(__name__)

BATCH_TYPE = "application/cloudevents-batch+json"
Progress = Callable[[int, int], None]


class ReplayError(TollgateError):
    """The service refused a batch, or did not take it before the deadline."""


@dataclass
class ReplayResult:
    """What the receiving side said about the whole replay."""

    sent: int = 0
    accepted: int = 0
    duplicates: int = 0
    retries: int = 0


def load_events(path: Path) -> list[dict[str, Any]]:
    """Read a JSON array or JSON lines (blank lines skipped) of CloudEvents."""
    text = path.read_bytes()
    if text.lstrip().startswith(b"["):
        document = orjson.loads(text)
        if not isinstance(document, list):
            raise ValidationFailed([{"field": "(file)", "reason": "expected a JSON array of events"}])
        return document
    events = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                events.append(orjson.loads(line))
            except orjson.JSONDecodeError as exc:
                raise ValidationFailed([{"field": f"line {number}", "reason": str(exc)}]) from exc
    return events


def _chunks(events: Sequence[dict[str, Any]], size: int) -> Iterator[Sequence[dict[str, Any]]]:
    for start in range(0, len(events), size):
        yield events[start : start + size]


def _retry_delay(response: httpx.Response | None, attempt: int) -> float:
    """Honour Retry-After (seconds) when given, else back off exponentially up to 30 s."""
    header = response.headers.get("Retry-After", "") if response is not None else ""
    if header.strip().isdigit():
        return float(header)
    return min(30.0, 0.5 * 2**attempt)


def _post_batch(
    client: httpx.Client,
    url: str,
    body: bytes,
    deadline: float,
    sleep: Callable[[float], None],
    result: ReplayResult,
) -> dict[str, Any]:
    """POST one batch until it is taken; retry 503s and connection errors, refuse on other answers."""
    attempt = 0
    while True:
        response: httpx.Response | None = None
        try:
            response = client.post(url, content=body, headers={"Content-Type": BATCH_TYPE})
        except httpx.TransportError as exc:
            log.warning("ingest unreachable (%s); retrying", exc)
        if response is not None and response.status_code == 202:
            answer: dict[str, Any] = response.json()
            return answer
        if response is not None and response.status_code != 503:
            raise ReplayError(f"ingest answered {response.status_code}: {response.text[:2000]}")
        delay = _retry_delay(response, attempt)
        if time.monotonic() + delay > deadline:
            raise ReplayError("ingest did not take the batch before the deadline")
        attempt += 1
        result.retries += 1
        sleep(delay)


def replay_http(
    events: Sequence[dict[str, Any]],
    url: str,
    token: str,
    batch: int = 500,
    on_progress: Progress | None = None,
    *,
    client: httpx.Client | None = None,
    max_wait: float = 300.0,
    sleep: Callable[[float], None] = time.sleep,
) -> ReplayResult:
    """POST events in batches, retrying 503s (honouring Retry-After); calls `on_progress(done, total)`."""
    endpoint = url.rstrip("/") if url.rstrip("/").endswith("/v1/events") else url.rstrip("/") + "/v1/events"
    own = client is None
    http = client or httpx.Client(timeout=30.0)
    http.headers["Authorization"] = f"Bearer {token}"
    result = ReplayResult()
    deadline = time.monotonic() + max_wait
    try:
        for chunk in _chunks(events, batch):
            answer = _post_batch(http, endpoint, orjson.dumps(list(chunk)), deadline, sleep, result)
            result.sent += len(chunk)
            result.accepted += int(answer.get("accepted", 0))
            result.duplicates += int(answer.get("duplicates", 0))
            if on_progress is not None:
                on_progress(result.sent, len(events))
    finally:
        if own:
            http.close()
    return result


def check_events(events: Sequence[Any]) -> None:
    """Refuse the file when any event breaks the api-call schema, naming each by index."""
    found = [{"index": i, **p} for i, event in enumerate(events) for p in problems(API_CALL_TYPE, event)]
    if found:
        raise ValidationFailed(found)


def replay_kafka(
    events: Sequence[dict[str, Any]],
    bootstrap: str,
    topic: str = topics.API_CALLS,
    on_progress: Progress | None = None,
    timeout: float = 60.0,
    security: KafkaSecurity = PLAINTEXT,
) -> ReplayResult:
    """Produce events straight to Kafka (acks=all, idempotent), keyed by licensee_id; wait for every ack."""
    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    try:
        producer = KafkaProducer(
            bootstrap_servers=bootstrap.split(","),
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
            max_block_ms=int(timeout * 1000),
            **security.kafka_python(),
        )
    except KafkaError as exc:
        # A refused TLS handshake or SASL login ends here: the constructor bootstraps.
        raise ReplayError(f"cannot connect to Kafka at {bootstrap}: {exc!r}") from exc
    try:
        futures = []
        for n, event in enumerate(events, start=1):
            licensee = (event.get("data") or {}).get("licensee_id")
            futures.append(
                producer.send(topic, key=licensee.encode() if licensee else None, value=orjson.dumps(event))
            )
            if on_progress is not None and n % 1000 == 0:
                on_progress(n, len(events))
        producer.flush(timeout=timeout)
        for future in futures:
            future.get(timeout=timeout)
    except KafkaError as exc:
        raise ReplayError(f"Kafka did not acknowledge every event: {exc!r}") from exc
    finally:
        producer.close(timeout=10)
    return ReplayResult(sent=len(events), accepted=len(events))
