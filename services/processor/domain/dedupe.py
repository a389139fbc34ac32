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


def forget_older_than(seen: dict[str, list[float]], oldest: float, cap: int) -> int:
    """Drop keys older than `oldest`, then the oldest past `cap`; return how many the cap evicted.

    Past the cap a duplicate of an evicted event would be counted again, so the caller reports evictions.
    """
    stale = [k for k, entry in seen.items() if entry[2] < oldest]
    for key in stale:
        del seen[key]
    excess = len(seen) - cap
    if excess <= 0:
        return 0
    for key, _ in sorted(seen.items(), key=lambda item: item[1][2])[:excess]:
        del seen[key]
    return excess
