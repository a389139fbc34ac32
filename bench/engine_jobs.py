"""The engine comparison's job, once on quix-streams and once on faust-streaming (DESIGN, issue 12).

The job: parse each call (JSON); exact dedupe on `source` + `id` in RocksDB state (7-day TTL where the
engine has one); month and minute counters per licensee; one output per counted call; a commit every
second. Run as `python -m bench.engine_jobs quix|faust BOOTSTRAP INPUT OUTPUT GROUP STATE_DIR
FIRST_FILE [GUARANTEE]`; the wall time of the first handled record is written to FIRST_FILE, and the
bench stops the job (SIGTERM) once the group has committed the input's end offsets.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

WEEK = timedelta(days=7)


class First:
    """Writes the wall time of the first record to a file, once."""

    def __init__(self, path: str) -> None:
        self.path, self.done = Path(path), False

    def mark(self) -> None:
        """Record now, if nothing was recorded yet."""
        if not self.done:
            self.path.write_text(repr(time.time()))
            self.done = True


def count(event: dict[str, Any], get: Any, put: Any) -> dict[str, Any] | None:
    """The job's step on a state of get/put(key, value, expiring): None for a duplicate."""
    dedupe = "d:" + event["source"] + "\x1f" + event["id"]
    if get(dedupe) is not None:
        return None
    put(dedupe, 1, True)
    month, minute = "m:" + event["time"][:7], "n:" + event["time"][:16]
    calls = (get(month) or 0) + 1
    put(month, calls, False)
    per_minute = (get(minute) or 0) + 1
    put(minute, per_minute, True)
    return {"id": event["id"], "licensee": event["data"]["licensee_id"], "month": calls, "minute": per_minute}


def quix(
    bootstrap: str, input_topic: str, output: str, group: str, state_dir: str, first: First, guarantee: str
) -> None:
    """The job on quix-streams (RocksDB state with TTL, one commit a second)."""
    from quixstreams import Application

    app = Application(
        broker_address=bootstrap,
        consumer_group=group,
        processing_guarantee=guarantee,  # type: ignore[arg-type]
        auto_offset_reset="earliest",
        commit_interval=1.0,
        state_dir=state_dir,
        loglevel="WARNING",
    )
    calls = app.topic(input_topic, key_deserializer="bytes", value_deserializer="json")
    out = app.topic(output, value_serializer="json")

    def step(event: dict[str, Any], state: Any) -> dict[str, Any] | None:
        first.mark()
        return count(
            event, state.get, lambda k, v, ttl: state.set(k, v, ttl=WEEK) if ttl else state.set(k, v)
        )

    app.dataframe(calls).apply(step, stateful=True).filter(lambda v: v is not None).to_topic(out)
    app.run()


def faust_job(
    bootstrap: str, input_topic: str, output: str, group: str, state_dir: str, first: First, guarantee: str
) -> None:
    """The same job on faust-streaming (rocksdict tables; faust tables have no per-key TTL)."""
    import faust

    app = faust.App(
        group,
        broker=f"kafka://{bootstrap}",
        store="rocksdb://",
        datadir=state_dir,
        topic_partitions=6,
        broker_commit_interval=1.0,
        web_enabled=False,
        processing_guarantee=guarantee.replace("-", "_"),
    )
    calls = app.topic(
        input_topic, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
    )
    out = app.topic(output, key_serializer="raw", value_serializer="raw")
    table = app.Table("state", default=None, partitions=6)

    @app.agent(calls)
    async def process(stream: Any) -> None:
        async for key, value in stream.items():
            first.mark()
            result = count(json.loads(value), table.get, lambda k, v, _ttl: table.__setitem__(k, v))
            if result is not None:
                await out.send(key=key, value=json.dumps(result).encode())

    app.finalize()
    worker = faust.Worker(app, loglevel="WARNING", quiet=True)
    worker.execute_from_commandline()


def main(argv: list[str]) -> None:
    """Run the named engine's job until stopped."""
    engine, bootstrap, input_topic, output, group, state_dir, first_file, *rest = argv
    guarantee = rest[0] if rest else "exactly-once"
    job = {"quix": quix, "faust": faust_job}[engine]
    job(bootstrap, input_topic, output, group, state_dir, First(first_file), guarantee)


if __name__ == "__main__":
    main(sys.argv[1:])
