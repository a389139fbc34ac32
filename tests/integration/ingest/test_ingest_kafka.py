"""Against a real broker: a 202 means every event is on the topic, keyed by licensee and schema-valid."""

from __future__ import annotations

import concurrent.futures
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from services.core.schemas import API_CALL_TYPE, problems

pytestmark = pytest.mark.integration


def test_a_batch_posted_over_http_lands_on_the_topic_keyed_by_licensee(
    ingest_on_new_topic: Callable[[int], Any], api_call: Callable[..., dict[str, Any]]
) -> None:
    ingest = ingest_on_new_topic(6)
    batch = [api_call(n, licensee=f"lic-{n % 5}") for n in range(300)]
    response = ingest.post(batch + batch[:7])
    assert (response.status_code, response.json()) == (202, {"accepted": 300, "duplicates": 7})
    records = ingest.published(expected=300)
    assert len(records) == 300
    partitions_of: dict[str, set[int]] = defaultdict(set)
    for record in records:
        event = orjson.loads(record.value)
        assert problems(API_CALL_TYPE, event) == []
        assert record.key.decode() == event["data"]["licensee_id"]
        partitions_of[event["data"]["licensee_id"]].add(record.partition)
    assert sorted(orjson.loads(r.value)["id"] for r in records) == sorted(e["id"] for e in batch)
    assert all(len(parts) == 1 for parts in partitions_of.values())


def test_every_event_of_every_202_from_concurrent_clients_is_on_the_topic(
    ingest_on_new_topic: Callable[[int], Any], api_call: Callable[..., dict[str, Any]]
) -> None:
    ingest = ingest_on_new_topic(3)
    batches = [[api_call(b * 1000 + n, licensee=f"lic-{n % 7}") for n in range(100)] for b in range(40)]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(ingest.post, batches))
    accepted = {
        e["id"] for batch, r in zip(batches, answers, strict=True) if r.status_code == 202 for e in batch
    }
    assert len(accepted) == 4000
    on_topic = [orjson.loads(r.value)["id"] for r in ingest.published(expected=4000)]
    assert set(on_topic) == accepted
    assert len(on_topic) == len(accepted)


def test_readyz_says_ready_when_the_broker_answers(ingest_on_new_topic: Callable[[int], Any]) -> None:
    ingest = ingest_on_new_topic(1)
    assert ingest.client.get(f"{ingest.url}/readyz").status_code == 200
