"""The worker's start-up objects leave the collector's generations (gc_freeze.py)."""

from __future__ import annotations

import gc

from services.processor.gc_freeze import freeze_start_up_objects


class _LongLived:
    """A tracked object standing for one built at start-up."""


def _tracked(generation: int, target: object) -> bool:
    return any(o is target for o in gc.get_objects(generation))


def test_objects_built_before_the_freeze_are_no_longer_walked_by_a_full_collection() -> None:
    before = _LongLived()
    gc.collect()
    assert _tracked(2, before)
    try:
        frozen = freeze_start_up_objects()
        assert frozen >= 1
        assert not any(_tracked(g, before) for g in (0, 1, 2))
        after = _LongLived()
        assert any(_tracked(g, after) for g in (0, 1, 2))  # what the worker makes later is collected
    finally:
        gc.unfreeze()
    assert _tracked(2, before)
