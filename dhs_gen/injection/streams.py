"""Per-row random streams: ``np.random.default_rng([seed, stream])`` for a whole batch of rows.

Each row's generator is numpy's PCG64 seeded by ``SeedSequence([seed, stream])``; building one
costs ~10 µs, most of it SeedSequence's hashing in Python-level calls. :func:`generators` runs
that hash (numpy's algorithm: ``mix_entropy`` into a pool of four 32-bit words, then
``generate_state(4, uint64)``) once over every row with numpy arrays and hands each PCG64 its
state words, so every generator is the one ``default_rng([seed, stream])`` gives, bit for bit
(tests/dhs_gen/injection/test_streams.py checks it), in ~2 µs a row.
"""
from __future__ import annotations

from typing import List

import numpy as np
from numpy.random.bit_generator import ISeedSequence

_POOL = 4  # numpy's DEFAULT_POOL_SIZE (32-bit words)
_INIT_A, _MULT_A = 0x43B0D7E5, 0x931E8875
_INIT_B, _MULT_B = 0x8B51F9DD, 0x58F38DED
_MIX_MULT_L, _MIX_MULT_R = 0xCA01F9DD, 0x4973F715
_XSHIFT = 16
_MASK = 0xFFFFFFFF


class _State(ISeedSequence):
    """A seed sequence whose state words are known already."""

    __slots__ = ("words",)

    def __init__(self, words: np.ndarray):
        self.words = words

    def generate_state(self, n_words, dtype=np.uint32):
        if n_words != 4 or np.dtype(dtype) != np.uint64:  # what PCG64 asks for, nothing else
            raise ValueError("precomputed for PCG64 only")
        return self.words


def _hash_constants(start: int, mult: int, count: int) -> List[int]:
    """The hash constants of ``count`` successive hashmix calls (they do not depend on the data)."""
    out, value = [], start
    for _ in range(count):
        out.append(value)
        value = (value * mult) & _MASK
    return out


_MIX_CALLS = _POOL + _POOL * (_POOL - 1)
_HASH_A = _hash_constants(_INIT_A, _MULT_A, _MIX_CALLS)
_HASH_B = _hash_constants(_INIT_B, _MULT_B, 2 * _POOL)


def _hashmix(value: np.ndarray, call: int) -> np.ndarray:
    value = value ^ np.uint32(_HASH_A[call])
    value = value * np.uint32((_HASH_A[call] * _MULT_A) & _MASK)
    return value ^ (value >> np.uint32(_XSHIFT))


def _mix(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    result = np.uint32(_MIX_MULT_L) * x - np.uint32(_MIX_MULT_R) * y
    return result ^ (result >> np.uint32(_XSHIFT))


def _entropy(seeds: np.ndarray, stream: int) -> np.ndarray:
    """(N, 4) uint32: each int's little-endian 32-bit words (0 as one word), concatenated, padded
    with zeros (numpy hashes missing pool words as 0, so padding changes nothing)."""
    lo = (seeds & np.uint64(_MASK)).astype(np.uint32)
    hi = (seeds >> np.uint64(32)).astype(np.uint32)
    words = np.zeros((len(seeds), _POOL), np.uint32)
    words[:, 0] = lo
    two = hi > 0
    words[:, 1] = np.where(two, hi, np.uint32(stream))
    words[:, 2] = np.where(two, np.uint32(stream), np.uint32(0))
    return words


def state_words(seeds: np.ndarray, stream: int) -> np.ndarray:
    """(N, 4) uint64: ``SeedSequence([seed, stream]).generate_state(4, np.uint64)`` of each seed."""
    entropy = _entropy(np.asarray(seeds, np.uint64), stream)
    with np.errstate(over="ignore"):
        pool = [_hashmix(entropy[:, i], i) for i in range(_POOL)]
        call = _POOL
        for src in range(_POOL):
            for dst in range(_POOL):
                if src != dst:
                    pool[dst] = _mix(pool[dst], _hashmix(pool[src], call))
                    call += 1
        words = np.empty((len(entropy), 2 * _POOL), np.uint32)
        for i in range(2 * _POOL):
            value = (pool[i % _POOL] ^ np.uint32(_HASH_B[i])) * np.uint32((_HASH_B[i] * _MULT_B) & _MASK)
            words[:, i] = value ^ (value >> np.uint32(_XSHIFT))
    return words[:, 0::2].astype(np.uint64) | (words[:, 1::2].astype(np.uint64) << np.uint64(32))


def generators(seeds, stream: int) -> List[np.random.Generator]:
    """``[np.random.default_rng([int(seed), stream]) for seed in seeds]``, the same streams.
    ``seeds``: non-negative ints below 2**64; ``stream``: a non-negative int below 2**32."""
    seeds = np.asarray(seeds)
    if not 0 <= stream <= _MASK:
        raise ValueError(f"stream {stream} is not a 32-bit word")
    if seeds.dtype.kind == "i" and len(seeds) and seeds.min() < 0:
        raise ValueError(f"negative seed {seeds.min()}")
    words = state_words(seeds.astype(np.uint64), stream)
    return [np.random.Generator(np.random.PCG64(_State(w))) for w in words]
