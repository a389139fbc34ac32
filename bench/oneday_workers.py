"""The one-day run with many workers (issue 14 item 3): one generated day run twice in one sitting, first
through one ingest process, one processor worker and one ledger instance, then through two ingest
processes (TOLLGATE_INGEST_WORKERS=2, one port), three processor workers (one consumer group) and two
ledger instances (one consumer group); the sustained rate and drain of each, each run's exactness against
the pure domain's expectation, and whether the many-worker run's ledger totals per licensee, alert ids
and DLQ count equal the single-worker run's.

    python -m bench.oneday_workers [--calls 2100000] [--licensees 200] [--rate 5000]

Both runs post the same pre-built bodies (bench/oneday_traffic.py) with `bench.oneday.run_day`: each has
its own topics, processor app id and ledger consumer group, so neither sees the other's traffic. The
many-worker run starts its clock once the processor group is stable with every worker holding input
partitions. No worker is killed here: tests/chaos/test_many_workers.py proves the same shape exact
through a kill -9. Uses the stack in $TOLLGATE_*; prints JSON; exits 1 when a run was not exact.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from bench import e2e_bench, oneday
from bench.report_rows import ratio
from services.stack.state import StackInfo

SHAPES = {
    "single": {"ingest_workers": 1, "processors": 1, "ledgers": 1},
    "many": {"ingest_workers": 2, "processors": 3, "ledgers": 2},
}


def same(single: oneday.Observed, many: oneday.Observed) -> dict[str, bool]:
    """Whether the many-worker run shows what the single-worker run showed, item by item."""
    return {
        "totals_per_licensee": single.usage == many.usage,
        "alert_ids": single.alert_ids == many.alert_ids,
        "dlq_count": single.dlq == many.dlq,
    }


def run(
    stack: StackInfo, calls: int = 2_100_000, licensees: int = 200, rate: float = 5_000.0, *, senders: int = 6
) -> dict[str, Any]:
    """Generate the day once, run it single then many, and compare the two runs with each other."""
    day, result = oneday.generate(calls, licensees)
    result["shapes"] = SHAPES
    observed = {}
    for name, shape in SHAPES.items():
        result[name], observed[name] = oneday.run_day(stack, day, rate, senders=senders, **shape)
    result["many_equals_single"] = same(observed["single"], observed["many"])
    result["sustained_ratio"] = ratio(
        result["many"]["sustained_events_per_s"], result["single"]["sustained_events_per_s"]
    )
    result["exact"] = bool(
        result["single"]["exact"] and result["many"]["exact"] and all(result["many_equals_single"].values())
    )
    return result


def main(argv: list[str] | None = None) -> int:
    """Command line entry point: JSON on stdout; 1 when a run was not exact or the two differ."""
    parser = oneday.day_parser(__doc__)
    args = parser.parse_args(argv)
    stack = e2e_bench.cli_stack(parser)
    result = run(stack, args.calls, args.licensees, args.rate, senders=args.senders)
    print(json.dumps(result, indent=2))
    return 0 if result["exact"] else 1


if __name__ == "__main__":
    sys.exit(main())
