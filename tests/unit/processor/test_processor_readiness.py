"""The worker waits for its topics' leaders before quix assigns partitions."""

from __future__ import annotations

from typing import Any

import pytest

from services.processor.readiness import TopicsNotReady, used_by, wait_for_leaders


class FlakyConsumer:
    """Answers end offsets only after `failures` refusals, like a topic whose leader is not elected yet."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.asked: list[Any] = []
        self.closed = False

    def topics(self) -> set[str]:
        return {"calls", "changelog__tollgate-processor--calls--default", "someone-elses"}

    def partitions_for_topic(self, name: str) -> set[int]:
        return {0, 1}

    def end_offsets(self, partitions: list[Any]) -> dict[Any, int]:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("NOT_LEADER_FOR_PARTITION")
        self.asked.append(partitions)
        return dict.fromkeys(partitions, 0)

    def close(self) -> None:
        self.closed = True


def test_the_wait_retries_until_each_of_the_workers_topics_answers() -> None:
    consumer, naps = FlakyConsumer(failures=3), []
    names = wait_for_leaders(lambda: consumer, used_by("tollgate-processor", ["calls"]), 30, naps.append)
    assert names == ["calls", "changelog__tollgate-processor--calls--default"]
    assert len(consumer.asked) == 2 and naps == [0.5, 0.5, 0.5] and consumer.closed


def test_the_wait_fails_naming_the_topic_once_the_timeout_passed() -> None:
    consumer = FlakyConsumer(failures=10**6)
    with pytest.raises(TopicsNotReady, match="calls"):
        wait_for_leaders(lambda: consumer, used_by("tollgate-processor", ["calls"]), 0, lambda _: None)
    assert consumer.closed
