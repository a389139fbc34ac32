"""Many workers (issue 14 item 3): three processor workers in one consumer group, two ingest processes on
one port and two ledger instances on one private stack give exactly what a single worker must give: the
ledger's totals per licensee and usage bucket, every usage_id once, the processor's committed counts, the
alert ids and the invoices equal the chaos scenario's expectation, while one processor worker is killed
with kill -9 mid-stream (placed by the group's progress, as test_faults.py does) and started again."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from senders import Senders
from support import Deployment, Shape, fraction_of, note_fault, run_fault, scenario, wait_for
from test_faults import assert_exact, assert_mid_stream

from services.core import topics
from services.demo.observe import metric_sum

pytestmark = [pytest.mark.chaos, pytest.mark.e2e, pytest.mark.slow]

SHAPE = Shape(processors=3, ledgers=2, ingest_workers=2)
INGEST_REQUESTS = "tollgate_ingest_worker_requests_total"


def ingest_processes(deployed: Deployment) -> int:
    """How many worker processes the ingest supervisor runs now (its children, from /proc)."""
    pid = deployed.service("ingest").process.pid
    return len(Path(f"/proc/{pid}/task/{pid}/children").read_text().split())


def ingest_requests_by_worker(deployed: Deployment) -> dict[str, int]:
    """POST /v1/events answers per ingest process, from the supervisor's summed metrics."""
    address = deployed.service("ingest").metrics_address
    workers = [str(n) for n in range(SHAPE.ingest_workers)]
    return {n: int(metric_sum(address, INGEST_REQUESTS, worker=n)) for n in workers}


def ledger_owners(database_url: str) -> set[str]:
    """The ledger instances that own a billable partition they stored rows from."""
    query = "SELECT DISTINCT owner FROM consumer_offsets WHERE topic = %s AND next_offset > 0"
    with psycopg.connect(database_url, connect_timeout=3) as conn:
        return {str(owner) for (owner,) in conn.execute(query, (topics.BILLABLE,)).fetchall()}


def _kill_the_busiest_worker(deployed: Deployment, senders: Senders, facts: dict[str, Any]) -> None:
    """Once the workers together decided 40% of the events, kill -9 the one that decided most (it owns the
    hottest partition, so its open transaction and unflushed buckets are real), then start it again."""
    total = scenario().expected.count
    goal = fraction_of(total, 0.4)
    wait_for(lambda: deployed.processed() >= goal, 240, f"{goal} of {total} events decided by the workers")
    decided = deployed.decided_by()
    victim = max(decided, key=lambda key: decided[key])
    facts["decided_by_worker"] = decided
    facts["killed"] = victim
    note_fault(facts, senders, sum(decided.values()), total, "decided")
    started = time.monotonic()
    deployed.kill(victim)
    senders.release()  # the load goes on while the worker is down and its partitions move
    deployed.restart(victim)
    facts["down_seconds"] = round(time.monotonic() - started, 1)
    facts["workers_after_restart"] = len(deployed.processor_keys())
    facts["ingest_processes"] = ingest_processes(deployed)


@pytest.mark.timeout(600)  # six services start, on 2 shared cores
def test_three_workers_two_ingest_processes_and_two_ledgers_give_one_workers_result_through_a_kill() -> None:
    """kill -9 of one of three processor workers mid-stream, then a restart: exact as one worker must be."""
    observed: dict[str, Any] = {}

    def fault(deployed: Deployment, senders: Senders, facts: dict[str, Any]) -> None:
        _kill_the_busiest_worker(deployed, senders, facts)
        senders.join()  # every batch answered: the ingest and ledger shapes are read while they run
        facts["ingest_requests_by_worker"] = ingest_requests_by_worker(deployed)
        wait_for(lambda: len(ledger_owners(deployed.info.database_url)) == SHAPE.ledgers, 240,
                 "both ledger instances to store billable rows")
        observed["owners"] = ledger_owners(deployed.info.database_url)

    run = run_fault("3 processor workers, 2 ingest, 2 ledgers; kill -9 of one worker", "many-workers",
                    fault, shape=SHAPE)

    facts = run.facts
    assert_mid_stream(run)
    assert facts["decided_by_worker"][facts["killed"]] > 0, f"the killed worker had no work: {facts}"
    # Four input partitions hold calls and a worker owns two of six, so at least two workers had work.
    assert sum(1 for n in facts["decided_by_worker"].values() if n > 0) >= 2, facts["decided_by_worker"]
    assert facts["workers_after_restart"] == SHAPE.processors
    assert facts["ingest_processes"] == SHAPE.ingest_workers
    # The supervisor sums both processes' answers; which process a connection meets is the kernel's choice.
    requests = facts["ingest_requests_by_worker"]
    assert sum(requests.values()) >= run.report.answered_202, requests
    assert len(observed["owners"]) == SHAPE.ledgers, observed["owners"]
    assert_exact(run)
