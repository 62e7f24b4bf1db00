"""Reproducible per-row randomness from a stable hash of (run seed, row id).

Python's built-in ``hash()`` is salted per process and must never be used for this.
The hash is SHA-256 of the UTF-8 string ``f"{seed}:{row_id}"``; its first 15 hex digits
(60 bits) give a non-negative int64 that Spark can reproduce natively with
``conv(substring(sha2(concat_ws(':', seed, id), 256), 1, 15), 16, 10)``
(see :func:`dhs_gen.spark.stable_hash64_col`), so local and cluster code agree bit for bit.
"""
from __future__ import annotations

import hashlib
from typing import Iterable

import numpy as np

HASH_HEX_DIGITS = 15
_HASH_SCALE = float(16**HASH_HEX_DIGITS)


def stable_hash64(seed: int | str, row_id) -> int:
    """Stable non-negative 60-bit integer hash of (seed, row_id)."""
    digest = hashlib.sha256(f"{seed}:{row_id}".encode()).hexdigest()
    return int(digest[:HASH_HEX_DIGITS], 16)


def stable_hash64_many(seed: int | str, row_ids: Iterable) -> np.ndarray:
    """Vector of :func:`stable_hash64` over row ids, as int64."""
    return np.fromiter((stable_hash64(seed, r) for r in row_ids), dtype=np.int64)


def stable_uniform(seed: int | str, row_ids: Iterable) -> np.ndarray:
    """Deterministic uniforms in [0, 1) from (seed, row id): hash / 16**15."""
    return stable_hash64_many(seed, row_ids).astype(np.float64) / _HASH_SCALE


def row_rng(seed: int | str, row_id) -> np.random.Generator:
    """A numpy Generator seeded from the stable hash of (seed, row_id)."""
    return np.random.default_rng(stable_hash64(seed, row_id))
