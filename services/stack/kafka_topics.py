"""Topics on a broker: the contract's topic specs, creating the missing ones, waiting for leaders."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from services.core import topics
from services.core.security import PLAINTEXT, KafkaSecurity

log = logging.getLogger(__name__)


def topic_specs(partitions: int) -> dict[str, dict[str, Any]]:
    """Return the contract's topics: name -> partitions and configs (the agreements topic is compacted)."""
    return {
        name: {
            "partitions": partitions,
            "configs": {"cleanup.policy": "compact"} if name in topics.COMPACTED_TOPICS else {},
        }
        for name in topics.ALL_TOPICS
    }


def create_topics(
    bootstrap: str,
    partitions: int,
    specs: Mapping[str, Mapping[str, Any]] | None = None,
    security: KafkaSecurity = PLAINTEXT,
) -> list[str]:
    """Create the missing topics and wait until each has a leader; return the names created."""
    from kafka.admin import KafkaAdminClient, NewTopic

    wanted = dict(specs or topic_specs(partitions))
    # PLAINTEXT by default on purpose: the local stack's broker listens in clear on 127.0.0.1 only and
    # takes no TOLLGATE_KAFKA_* settings; the TLS test broker (kafka_tls.py) passes its own security.
    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap, client_id="tollgate-stack", request_timeout_ms=30000,
        **security.kafka_python(),
    )  # fmt: skip
    try:
        missing = [name for name in wanted if name not in set(admin.list_topics())]
        if missing:
            new = [
                NewTopic(
                    name, int(wanted[name]["partitions"]), 1, topic_configs=dict(wanted[name]["configs"])
                )
                for name in missing
            ]
            admin.create_topics(new, timeout_ms=30000)
        _wait_for_leaders(admin, list(wanted))
    finally:
        admin.close()
    log.info("kafka topics ready at %s (created %s)", bootstrap, ", ".join(missing) or "none")
    return missing


def _wait_for_leaders(admin: Any, names: list[str], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        described = admin.describe_topics(names)
        ready = {
            t.get("name") or t.get("topic")
            for t in described
            if t.get("error_code", 0) == 0
            and t["partitions"]
            and all(p.get("leader", p.get("leader_id", -1)) >= 0 for p in t["partitions"])
        }
        if set(names) <= ready:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"topics without leaders: {sorted(set(names) - ready)}")
        time.sleep(0.2)
