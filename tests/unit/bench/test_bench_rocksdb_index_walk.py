"""bench.rocksdb_index_walk: the offline walk steps from the floor over what the last sweeps left."""

from __future__ import annotations

from pathlib import Path

from rocksdict import Options, Rdict

from bench.rocksdb_index_walk import fill, index_key, run, walk


def test_index_keys_sort_by_expiry_whatever_the_user_key() -> None:
    assert sorted([index_key(2, 1), index_key(1, 99), index_key(10, 0)]) == [
        index_key(1, 99), index_key(2, 1), index_key(10, 0)
    ]  # fmt: skip


def test_a_walk_starts_at_the_floor_and_steps_the_entries_asked_for(tmp_path: Path) -> None:
    options = Options(raw_mode=True)
    options.create_if_missing(True)
    db = Rdict(str(tmp_path / "db"), options=options)
    try:
        fill(db, 100)
        _, _, seen = walk(db, index_key(40, 40), 5, 10**9)
    finally:
        db.close()
    assert seen == [index_key(n, n) for n in range(40, 46)]


def test_a_run_reports_seek_and_step_times_of_its_first_and_last_walks() -> None:
    result = run(entries=1_000, rounds=20, per=10)
    assert result["rounds"] == 20 and result["per_walk"] == 10
    parts, measures = ("first_tenth", "last_tenth"), ("seek_us", "step_us")
    times = [result[part][measure] for part in parts for measure in measures]
    assert len(times) == 4 and all(t > 0 for t in times)
