"""Dedupe identity of a call: a short, stable digest of its `source` + `id`."""

from __future__ import annotations

import hashlib

# The state key of a call's dedupe entry is this prefix and its digest.
DEDUPE_PREFIX = "d:"
# 64-bit digests keep the keys small; a collision needs ~4e9 keys of one licensee in one horizon.
_DIGEST_BYTES = 8


def digest(event_key: str) -> str:
    """A short, stable digest of an event key (`source` + `id`)."""
    return hashlib.blake2b(event_key.encode("utf-8"), digest_size=_DIGEST_BYTES).hexdigest()
