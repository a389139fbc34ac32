"""The fault matrix: each fault lands mid-stream on a private stack, and afterwards the ledger, the
processor's own counts, the alert ids and the invoices equal the undisturbed expectation exactly.

Every fault is placed by progress, never by the clock: it waits until a share of the load was answered,
decided or stored, while run_fault holds the last 40% of the batches back until the fault has been placed.
A fault that lasts until it hit the load (ingest down, Kafka or PostgreSQL stopped) ends when the load
ran into it, within a bound; each test then asserts that hit, so a fault that missed fails its test."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from senders import Senders, batches, event_key
from support import (
    Bucket,
    Deployment,
    FaultRun,
    Totals,
    buckets_of,
    fraction_of,
    holds_within,
    note_fault,
    run_fault,
    scenario,
    wait_for,
)

pytestmark = [pytest.mark.chaos, pytest.mark.e2e, pytest.mark.slow]

DOWN_AT_MOST = 40.0  # seconds a part stays down waiting for the load to run into it


def assert_exact(run: FaultRun) -> None:
    """Every event got its 202 in the end, and each counts exactly once everywhere: the ledger's and the
    processor's usage equal the expectation per licensee and per usage bucket, every usage_id once."""
    expected = run.scenario.expected
    assert run.report.errors == []
    assert run.report.accepted == expected.events
    assert run.verdict.problems == []
    assert (run.verdict.lost, run.verdict.doubled) == (0, 0)
    assert run.seen.usage == expected.usage
    assert run.seen.processor_usage == expected.usage
    assert run.seen.ledger.buckets == expected.buckets
    assert run.seen.processor.buckets == expected.buckets
    assert run.seen.ledger.repeated_ids == {} and run.seen.processor.repeated_ids == {}
    assert run.seen.alert_ids == expected.alert_ids
    assert run.seen.invoices == expected.invoices
    assert all(run.facts["alive"].values()), run.facts["alive"]


def assert_mid_stream(run: FaultRun) -> None:
    """The fault came while its own measure of progress was short of the total and batches were unsent."""
    facts = run.facts
    assert facts["progress_at_fault"] < facts["total"], f"the fault came after the stream: {facts['at']}"
    assert facts["batches_unsent"] > 0, f"the fault came after the senders were done: {facts['at']}"


def _kill_ingest(deployed: Deployment, senders: Senders, facts: dict[str, Any]) -> None:
    goal = fraction_of(senders.batch_count, 0.4)
    wait_for(lambda: senders.batches_taken >= goal, 180, f"{goal} batches answered before killing ingest")
    # Preferably while a batch is on its way, so it may die half produced (a wish, not a precondition).
    facts["in_flight_at_kill"] = senders.wait_until_in_flight(10.0)
    note_fault(facts, senders, senders.batches_taken, senders.batch_count, "batches answered")
    failed = senders.report.transport_errors
    started = time.monotonic()
    deployed.kill("ingest")
    senders.release()
    # Down until a sender ran into the dead ingest: a restart quicker than the gap between two requests
    # would otherwise miss the load altogether (what made this test flaky).
    holds_within(lambda: senders.report.transport_errors > failed, DOWN_AT_MOST, "a sender to fail")
    facts["failed_while_down"] = senders.report.transport_errors - failed
    facts["hits"] = f"{facts['failed_while_down']} requests failed while down"
    deployed.restart("ingest")
    facts["down_seconds"] = round(time.monotonic() - started, 1)


def test_killing_ingest_during_a_load_loses_nothing_and_doubles_nothing() -> None:
    """kill -9 of ingest while four senders post: each 202'd event counts once; retries complete the set."""
    run = run_fault("kill -9 ingest during the load", "ingest", _kill_ingest)

    assert_mid_stream(run)
    assert run.facts["failed_while_down"] > 0, "the kill did not hit the senders"
    assert_exact(run)
    assert set(run.seen.ledger.usage_ids.values()) == {1}


def _kill_and_restart(key: str, progress_of: Callable[[Deployment], Callable[[], int]], unit: str) -> Any:
    def fault(deployed: Deployment, senders: Senders, facts: dict[str, Any]) -> None:
        progress, total = progress_of(deployed), scenario().expected.count
        goal = fraction_of(total, 0.4)
        wait_for(lambda: progress() >= goal, 180, f"{goal} of {total} events {unit} before killing {key}")
        note_fault(facts, senders, progress(), total, unit)
        started = time.monotonic()
        deployed.kill(key)
        senders.release()  # the load goes on while the service is down and starting again
        deployed.restart(key)
        facts["down_seconds"] = round(time.monotonic() - started, 1)

    return fault


def test_killing_the_processor_mid_stream_loses_nothing_and_doubles_nothing() -> None:
    """kill -9 of the processor mid-stream, then a restart: it resumes from its committed offsets."""
    fault = _kill_and_restart("processor", lambda deployed: deployed.processed, "decided")
    run = run_fault("kill -9 processor mid-stream", "processor", fault)

    assert_mid_stream(run)
    assert_exact(run)


def test_killing_the_ledger_mid_stream_loses_nothing_and_doubles_nothing() -> None:
    """kill -9 of the ledger mid-stream, then a restart: it resumes from the offsets stored with its rows."""
    fault = _kill_and_restart("ledger", lambda deployed: deployed.ledger_calls, "stored")
    run = run_fault("kill -9 ledger mid-stream", "ledger", fault)

    assert_mid_stream(run)
    assert_exact(run)


def _restart_kafka(deployed: Deployment, senders: Senders, facts: dict[str, Any]) -> None:
    goal = fraction_of(senders.batch_count, 0.3)
    wait_for(lambda: senders.batches_taken >= goal, 120, f"{goal} batches answered before stopping Kafka")
    note_fault(facts, senders, senders.batches_taken, senders.batch_count, "batches answered")
    before = senders.report.answered_503
    started = time.monotonic()
    deployed.stack.stop_part("kafka")
    senders.release()
    # Down until ingest refused a batch with a 503 (it waits its produce timeout first).
    holds_within(lambda: senders.report.answered_503 > before, DOWN_AT_MOST, "ingest to answer 503")
    facts["refused_while_down"] = senders.report.answered_503 - before
    facts["hits"] = f"{facts['refused_while_down']} requests answered 503 while down"
    deployed.stack.start_part("kafka")
    facts["down_seconds"] = round(time.monotonic() - started, 1)


def test_restarting_kafka_mid_stream_loses_nothing_and_doubles_nothing() -> None:
    """Kafka stopped and started again mid-stream: ingest answers 503 meanwhile, senders retry after
    Retry-After, and the processor and ledger reconnect by themselves."""
    run = run_fault("Kafka broker stopped and restarted", "kafka", _restart_kafka)

    assert_mid_stream(run)
    assert run.facts["refused_while_down"] > 0, "ingest never said 503 while Kafka was down"
    assert_exact(run)


def _restart_postgres(deployed: Deployment, senders: Senders, facts: dict[str, Any]) -> None:
    count = scenario().expected.count
    goal = fraction_of(count, 0.3)
    wait_for(lambda: deployed.ledger_calls() >= goal, 180, f"{goal} of {count} stored before stopping PG")
    note_fault(facts, senders, deployed.ledger_calls(), count, "stored")
    mark = deployed.log_size("ledger")
    started = time.monotonic()
    deployed.stack.stop_part("postgres")
    senders.release()  # the load must flow on, or the ledger has nothing to fail on
    # Down until the ledger failed (and rolled back) a batch.
    retried = holds_within(lambda: "rolled back" in deployed.log_since("ledger", mark), DOWN_AT_MOST,
                           "the ledger to notice PostgreSQL is gone")
    facts["ledger_retried"] = retried
    facts["hits"] = f"ledger rolled back: {retried}"
    deployed.stack.start_part("postgres")
    facts["down_seconds"] = round(time.monotonic() - started, 1)


def test_restarting_postgresql_mid_stream_loses_nothing_and_doubles_nothing() -> None:
    """PostgreSQL stopped and started again mid-stream: the ledger rolls back, retries, and resumes from
    the offsets stored in its own transactions."""
    run = run_fault("PostgreSQL stopped and restarted", "postgres", _restart_postgres)

    assert_mid_stream(run)
    assert run.facts["ledger_retried"], "the ledger never noticed PostgreSQL was down"
    assert_exact(run)


Batch = list[dict[str, Any]]


def _twice_and_some_thrice(batches: list[Batch]) -> tuple[list[Batch], dict[int, int]]:
    """Every batch twice in a row (a client that timed out); every fourth batch a third time, three
    batches later. Returns the sends and, for each third copy, the position of the batch it repeats."""
    sends: list[Batch] = []
    late: dict[int, int] = {}
    for number, batch in enumerate(batches):
        sends += [batch, batch]
        if number % 4 == 3:
            late[len(sends)] = number - 3
            sends.append(batches[number - 3])
    return sends, late


def _complete_buckets(original: list[Batch], late: dict[int, int]) -> dict[int, dict[Bucket, Totals]]:
    """For each third copy (by its position in the sends), the usage buckets its batch's calls are billed
    in, with the calls and records the whole event set bills in each: once the ledger holds exactly
    those, every call of the batch was counted, flushed and stored."""
    chosen = scenario()
    by_key = {(c.source, c.event_id): c for c in chosen.calls}
    calls_of = [[by_key[event_key(e)] for e in batch] for batch in original]
    last_batch: dict[Bucket, int] = {}
    for number, calls in enumerate(calls_of):
        for key in buckets_of(calls, chosen.agreements):
            last_batch[key] = number
    wanted = {}
    for position, repeated in late.items():
        keys = buckets_of(calls_of[repeated], chosen.agreements)
        # Reachable: every call of those buckets is in a batch sent (twice) before this third copy.
        sent_before = repeated + 3
        assert all(last_batch[key] <= sent_before for key in keys), f"batch {repeated}'s buckets reach past"
        wanted[position] = {key: chosen.expected.buckets[key] for key in keys}
    return wanted


def test_a_producer_retrying_the_same_batches_after_timeouts_counts_each_event_once() -> None:
    """Every batch sent twice, some a third time once the first copy is in the ledger: each counts once."""
    original = batches(scenario().events)
    sends, late = _twice_and_some_thrice(original)
    complete = _complete_buckets(original, late)
    stored_first: list[int] = []

    def before_send(deployed: Deployment, number: int) -> None:
        # A third copy goes out once its batch is in the ledger (every usage bucket its calls are billed in
        # holds all the calls and records it ever will), so the dedupe must hold against counted state,
        # not just among copies in flight together.
        if number in late and holds_within(lambda: deployed.ledger_holds(complete[number]), 60.0,
                                           f"batch {late[number]} in the ledger before sending it again"):
            stored_first.append(number)

    def note(deployed: Deployment, senders: Senders, facts: dict[str, Any]) -> None:
        facts["copies"] = f"{len(sends)} sends of {len(original)} batches"

    name = "producer re-sends batches (x2, some x3 once stored)"
    run = run_fault(name, "retries", note, sends, before_send)

    assert len(stored_first) == len(late), f"only {len(stored_first)} of {len(late)} third copies came late"
    assert_exact(run)
    assert run.report.answered_202 >= len(sends)
