"""Start-up objects frozen out of Python's full collections, which otherwise paused the worker.

A full (generation 2) collection walks every tracked object. Most of a worker's objects are built at
start-up (modules, quix's app, the Kafka clients, the views) and live as long as the process, so each
walk found nothing to free and held the worker for 47-92 ms every few seconds under load; after a
freeze, 5-27 ms (BENCHMARKS.md, "Start-up objects frozen"). Objects made later are collected as before.
"""

from __future__ import annotations

import gc


def freeze_start_up_objects() -> int:
    """Collect once, then move every tracked object to the permanent generation; how many are frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
