"""The fault matrix: each fault lands mid-stream on a private stack, and afterwards the ledger, the
processor's own counts, the alert ids and the invoices equal the undisturbed expectation exactly."""

from __future__ import annotations

import time
from typing import Any

import pytest
from support import (
    Deployment,
    FaultRun,
    Senders,
    batches,
    fraction_of,
    run_fault,
    scenario,
    wait_for,
)

pytestmark = [pytest.mark.chaos, pytest.mark.e2e, pytest.mark.slow]


def assert_exact(run: FaultRun) -> None:
    """Every event got its 202 in the end, and each counts exactly once everywhere."""
    expected = run.scenario.expected
    assert run.report.errors == []
    assert run.report.accepted == expected.events
    assert run.verdict.problems == []
    assert (run.verdict.lost, run.verdict.doubled) == (0, 0)
    assert run.seen.usage == expected.usage
    assert run.seen.processor_usage == expected.usage
    assert run.seen.alert_ids == expected.alert_ids
    assert run.seen.invoices == expected.invoices
    assert all(run.facts["alive"].values()), run.facts["alive"]


def _kill_and_restart(key: str, reached: str) -> Any:
    def fault(deployed: Deployment, senders: Senders, facts: dict[str, Any]) -> None:
        total = run_total(deployed, senders)
        progress = {
            "batches": lambda: senders.batches_taken,
            "decided": deployed.processed,
            "stored": deployed.ledger_rows,
        }[reached]
        goal = fraction_of(total[reached], 0.4)
        wait_for(lambda: progress() >= goal, 180, f"40% {reached} before killing {key}")
        facts["at"] = f"{progress()}/{total[reached]} {reached}"
        facts["progress_at_kill"] = progress()
        facts["total"] = total[reached]
        started = time.monotonic()
        deployed.kill_and_restart(key)
        facts["down_seconds"] = round(time.monotonic() - started, 1)

    return fault


def run_total(deployed: Deployment, senders: Senders) -> dict[str, int]:
    """What 100% means for each kind of progress."""
    count = scenario().expected.count
    return {"batches": senders.batch_count, "decided": count, "stored": count}


def test_killing_ingest_during_a_load_loses_nothing_and_doubles_nothing() -> None:
    """kill -9 of ingest while four senders post: each 202'd event counts once; retries complete the set."""
    run = run_fault("kill -9 ingest during the load", "ingest", _kill_and_restart("ingest", "batches"))

    assert run.report.failures > 0, "the kill did not hit the senders"
    assert_exact(run)
    assert all(n == 1 for n in run.seen.events.values())


def test_killing_the_processor_mid_stream_loses_nothing_and_doubles_nothing() -> None:
    """kill -9 of the processor mid-stream, then a restart: it resumes from its committed offsets."""
    run = run_fault("kill -9 processor mid-stream", "processor", _kill_and_restart("processor", "decided"))

    assert run.facts["progress_at_kill"] < run.facts["total"], "the kill came after the stream"
    assert_exact(run)


def test_killing_the_ledger_mid_stream_loses_nothing_and_doubles_nothing() -> None:
    """kill -9 of the ledger mid-stream, then a restart: it resumes from the offsets stored with its rows."""
    run = run_fault("kill -9 ledger mid-stream", "ledger", _kill_and_restart("ledger", "stored"))

    assert run.facts["progress_at_kill"] < run.facts["total"], "the kill came after the stream"
    assert_exact(run)


def _restart_kafka(deployed: Deployment, senders: Senders, facts: dict[str, Any]) -> None:
    goal = fraction_of(senders.batch_count, 0.3)
    wait_for(lambda: senders.batches_taken >= goal, 120, "30% of the batches before stopping Kafka")
    facts["at"] = f"{senders.batches_taken}/{senders.batch_count} batches"
    before = senders.report.answered_503
    started = time.monotonic()
    deployed.stack.stop_part("kafka")
    # Down until ingest has answered 503 at least once (it waits its produce timeout first), at most 30 s.
    wait_for(lambda: senders.report.answered_503 > before or time.monotonic() - started > 30, 40, "a 503")
    deployed.stack.start_part("kafka")
    facts["down_seconds"] = round(time.monotonic() - started, 1)


def test_restarting_kafka_mid_stream_loses_nothing_and_doubles_nothing() -> None:
    """Kafka stopped and started again mid-stream: ingest answers 503 meanwhile, senders retry after
    Retry-After, and the processor and ledger reconnect by themselves."""
    run = run_fault("Kafka broker stopped and restarted", "kafka", _restart_kafka)
    run.facts["answered_503"] = run.report.answered_503

    assert run.report.answered_503 > 0, "ingest never said 503 while Kafka was down"
    assert_exact(run)


def _restart_postgres(deployed: Deployment, senders: Senders, facts: dict[str, Any]) -> None:
    count = run_total(deployed, senders)["stored"]
    wait_for(lambda: deployed.ledger_rows() >= fraction_of(count, 0.3), 180, "30% stored before stopping PG")
    facts["at"] = f"{deployed.ledger_rows()}/{count} stored"
    mark = deployed.log_size("ledger")
    started = time.monotonic()
    deployed.stack.stop_part("postgres")
    # Down until the ledger has failed (and rolled back) a batch, at most 30 s.
    wait_for(
        lambda: "rolled back" in deployed.log_since("ledger", mark) or time.monotonic() - started > 30,
        40,
        "the ledger to notice PostgreSQL is gone",
    )
    facts["ledger_retried"] = "rolled back" in deployed.log_since("ledger", mark)
    deployed.stack.start_part("postgres")
    facts["down_seconds"] = round(time.monotonic() - started, 1)


def test_restarting_postgresql_mid_stream_loses_nothing_and_doubles_nothing() -> None:
    """PostgreSQL stopped and started again mid-stream: the ledger rolls back, retries, and resumes from
    the offsets stored in its own transactions."""
    run = run_fault("PostgreSQL stopped and restarted", "postgres", _restart_postgres)

    assert run.facts["ledger_retried"], "the ledger never noticed PostgreSQL was down"
    assert_exact(run)


def _twice_and_some_thrice(batches: list[list[dict[str, Any]]]) -> list[tuple[list[dict[str, Any]], float]]:
    """Every batch twice in a row (a client that timed out); every fourth batch a third time, three
    batches later, after a 0.5 s back-off."""
    sends: list[tuple[list[dict[str, Any]], float]] = []
    for number, batch in enumerate(batches):
        sends += [(batch, 0.0), (batch, 0.0)]
        if number % 4 == 3:
            sends.append((batches[number - 3], 0.5))
    return sends


def test_a_producer_retrying_the_same_batches_after_timeouts_counts_each_event_once() -> None:
    """Every batch sent twice, some a third time after a delay: each event still counts once."""
    original = batches(scenario().events)
    sends = _twice_and_some_thrice(original)

    def note(deployed: Deployment, senders: Senders, facts: dict[str, Any]) -> None:
        facts["copies"] = f"{len(sends)} sends of {len(original)} batches"

    run = run_fault("producer re-sends batches (x2, some x3 after a delay)", "retries", note, sends=sends)

    assert_exact(run)
    assert run.report.answered_202 >= len(sends)
