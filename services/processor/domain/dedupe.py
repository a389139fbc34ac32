"""Dedupe memory: which event keys a licensee's state has counted, bounded by a horizon and a hard cap."""

from __future__ import annotations

import hashlib

# 64-bit digests keep the per-licensee value small; a collision needs ~4e9 keys in one horizon.
_DIGEST_BYTES = 8


def digest(event_key: str) -> str:
    """A short, stable digest of an event key (`source` + `id`)."""
    return hashlib.blake2b(event_key.encode("utf-8"), digest_size=_DIGEST_BYTES).hexdigest()


def remember(
    seen: dict[str, list[float]], key_digest: str, partition: int, offset: int, event_time: float
) -> None:
    """Record that the event was counted at (partition, offset)."""
    seen[key_digest] = [partition, offset, event_time]


def forget_older_than(
    seen: dict[str, list[float]], oldest: float, cap: int, keep_from: dict[int, int] | None = None
) -> int:
    """Drop keys older than `oldest`, then the oldest past `cap`; return how many the cap evicted.

    A key counted at or after `keep_from[partition]` is kept past the horizon: a call re-read after a
    crash (a replay, always close behind its partition's last handled offset) must still find its key to
    re-emit its billable record. Past the cap a duplicate of an evicted event would be counted again, so
    the caller reports evictions.
    """
    keep = keep_from or {}
    stale = [k for k, e in seen.items() if e[2] < oldest and e[1] < keep.get(int(e[0]), float("inf"))]
    for key in stale:
        del seen[key]
    if len(seen) <= cap:
        return 0
    # Down to 90% of the cap: eviction sorts every key, so it must not run again on the next event.
    excess = len(seen) - (cap - cap // 10)
    for key, _ in sorted(seen.items(), key=lambda item: item[1][2])[:excess]:
        del seen[key]
    return excess
