"""A catch-up interval asked for at a commit holds for the one checkpoint that follows it."""

from __future__ import annotations

from typing import Any

from quixstreams.processing import ProcessingContext

from services.processor.checkpoint_pace import install


class _Nothing:
    """Stands in for the consumer, producer and managers a checkpoint only keeps references to."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"a new checkpoint touched {name}")


def _context() -> tuple[ProcessingContext, list[float]]:
    seen: list[float] = []
    nothing: Any = _Nothing()
    context = ProcessingContext(
        commit_interval=5.0, producer=nothing, consumer=nothing, state_manager=nothing,
        sink_manager=nothing, dataframe_registry=nothing, exactly_once=False,
    )  # fmt: skip
    install(context, 0.1, seen.append)
    return context, seen


def test_checkpoints_are_short_until_a_commit_asks_for_more() -> None:
    context, seen = _context()
    context.init_checkpoint()
    assert context.checkpoint._commit_interval == 0.1 and seen == [0.1]


def test_a_requested_interval_opens_the_next_checkpoint_only() -> None:
    context, seen = _context()
    paced: Any = context
    paced.requested = 1.0  # the commit found the worker behind
    context.init_checkpoint()
    assert context.checkpoint._commit_interval == 1.0
    context.init_checkpoint()  # that checkpoint expired empty: no request came with it
    assert context.checkpoint._commit_interval == 0.1
    assert seen == [0.1, 1.0, 0.1]


def test_a_worker_still_behind_keeps_the_long_interval_commit_after_commit() -> None:
    context, seen = _context()
    paced: Any = context
    for _ in range(3):
        paced.requested = 1.0
        context.init_checkpoint()
        assert context.checkpoint._commit_interval == 1.0
    assert seen == [0.1, 1.0]  # observed once per change
