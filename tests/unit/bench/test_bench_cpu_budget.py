"""bench/cpu_budget.py: which stage a process is charged to, and the budget's arithmetic."""

from __future__ import annotations

import os

import pytest

from bench.cpu_budget import budget, read_processes, stage_of

STACK = "/srv/tollgate-od-stack"
PROCESSES = {
    1: ("init", 0, 0.0),
    10: ("python -m bench.oneday --calls 300000", 1, 5.0),
    11: ("/x/.venv/bin/python -m services.cli serve ingest", 10, 1.0),
    12: ("/x/.venv/bin/python -c from multiprocessing.spawn import spawn_main", 11, 7.0),
    13: ("/x/.venv/bin/python -m services.cli serve processor", 10, 9.0),
    14: ("/x/.venv/bin/python -m services.cli serve ledger", 10, 2.0),
    20: (f"/usr/lib/postgresql/15/bin/postgres -D {STACK}/postgres/data -p 5", 1, 0.5),
    21: ("postgres: tollgate_app tollgate 127.0.0.1(5000) idle", 20, 3.0),
    30: (f"java -cp libs/* kafka.Kafka {STACK}/kafka/server.properties", 1, 4.0),
    31: ("java -cp libs/* kafka.Kafka /srv/another-stack/kafka/server.properties", 1, 8.0),
    40: ("/usr/lib/postgresql/15/bin/postgres -D /srv/another-stack/postgres/data", 1, 1.0),
    41: ("postgres: tollgate_app tollgate 127.0.0.1(6000) idle", 40, 6.0),
}


@pytest.mark.parametrize(
    ("pid", "stage"),
    [
        (11, "ingest"),
        (12, "ingest"),  # a worker forked by the ingest service
        (13, "processor"),
        (14, "ledger"),
        (20, "postgres"),
        (21, "postgres"),  # a backend of this stack's postmaster
        (30, "kafka"),
        (31, None),  # another stack's broker
        (41, None),  # a backend of another stack's PostgreSQL
        (10, None),  # the bench itself is counted from os.times(), not here
        (99, None),  # gone
    ],
)
def test_a_process_is_charged_to_its_nearest_named_ancestor_of_this_run(pid: int, stage: str | None) -> None:
    assert stage_of(pid, PROCESSES, STACK) == stage


def test_the_budget_gives_microseconds_per_event_and_the_rate_two_cores_allow_without_the_bench() -> None:
    found = budget({"processor": 4.0, "kafka": 1.0, "bench (senders, sampling)": 5.0}, 10_000, 12.34)
    assert found["us_per_event"] == {"bench (senders, sampling)": 500.0, "kafka": 100.0, "processor": 400.0}
    assert found["services_us_per_event"] == 500.0
    assert found["two_cores_allow_events_per_s"] == 4_000
    assert found["wall_s"] == 12.3


def test_reading_proc_finds_this_process_with_its_parent() -> None:
    mine = read_processes()[os.getpid()]
    assert "pytest" in mine[0] or "python" in mine[0]
    assert mine[1] == os.getppid() and mine[2] > 0


def test_the_one_day_report_shows_each_stages_cost_and_the_state_writes_per_event() -> None:
    from bench.oneday_report import cpu_rows

    cpu = budget({"processor": 4.0, "kafka": 1.0, "bench (senders, sampling)": 5.0}, 10_000, 60.0)
    rows = {row.metric: row for row in cpu_rows({**cpu, "changelog_offsets": 36_000})}
    assert rows["CPU per event: processor"].value == 400.0
    assert rows["CPU per event, services"].value == 500.0
    assert rows["rate 2 cores allow at that cost"].value == 4_000
    assert rows["processor state writes per event"].value == 3.6
    assert cpu_rows({}) == []
