"""Vectorised counter-based hashing for the mock sky (splitmix64 over uint64 arrays).

The mock survey must produce the same object whether it is asked for by a catalogue over
millions of rows or by one cutout, so every random quantity is a pure function of
(seed, cell, object index, stream): ``unit(seed_key, key, stream)``. This is numpy-only and runs
at ~10^8 values/s; it complements :mod:`dhs_gen.determinism` (SHA-256, used for row ids).
"""
from __future__ import annotations

import numpy as np
from scipy.special import ndtri

from dhs_gen.determinism import stable_hash64

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_TWO53 = float(2**53)


def mix64(x) -> np.ndarray:
    """splitmix64 finaliser of uint64 values (wrapping arithmetic), elementwise."""
    with np.errstate(over="ignore"):
        z = np.asarray(x, dtype=np.uint64) + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        return z ^ (z >> np.uint64(31))


def seed_key(seed) -> np.uint64:
    """A uint64 key for a run seed (int or str), via the project's stable SHA-256 hash."""
    return np.uint64(stable_hash64("mockdr10", seed))


def combine(key, value) -> np.ndarray:
    """Hash of (key, value) for uint64 arrays/scalars (order matters)."""
    return mix64(np.asarray(key, dtype=np.uint64) ^ mix64(np.asarray(value, dtype=np.uint64)))


def unit(key, stream: int) -> np.ndarray:
    """Uniforms in (0, 1), float64, one per key, independent across ``stream`` numbers."""
    with np.errstate(over="ignore"):
        h = combine(key, np.uint64(stream) * _GOLDEN + np.uint64(1))
    return ((h >> np.uint64(11)).astype(np.float64) + 0.5) / _TWO53


def normal(key, stream: int) -> np.ndarray:
    """Standard normal deviates, one per key (inverse-CDF of :func:`unit`)."""
    return ndtri(unit(key, stream))


def position_key(ra, dec) -> np.ndarray:
    """uint64 key of an exact float64 position (its bit patterns), for position-derived properties."""
    ra_bits = np.ascontiguousarray(ra, dtype=np.float64).view(np.uint64)
    dec_bits = np.ascontiguousarray(dec, dtype=np.float64).view(np.uint64)
    return combine(mix64(ra_bits), dec_bits)
