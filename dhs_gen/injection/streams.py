"""Per-row random streams: ``np.random.default_rng([seed, stream])`` for a whole batch of rows.

Each row's generator is numpy's PCG64 seeded by ``SeedSequence([seed, stream])``; building one
costs ~10 µs, most of it SeedSequence's hashing in Python-level calls. :func:`generators` runs
that hash (numpy's algorithm: ``mix_entropy`` into a pool of four 32-bit words, then
``generate_state(4, uint64)``) once over every row with numpy arrays and hands each PCG64 its
state words, so every generator is the one ``default_rng([seed, stream])`` gives, bit for bit
(tests/dhs_gen/injection/test_streams.py checks it), in ~2 µs a row.

Compiled code can also step a row's PCG64 itself (:func:`pcg64_step`, :func:`pcg64_output`,
:func:`pcg64_seed`, :func:`pcg64_double`: numpy's pcg64.c, 128-bit arithmetic in LLVM), from the state of a Generator
or straight from the state words, with no Generator built at all; the draws are numpy's bit for
bit (tests/dhs_gen/injection/test_streams.py).
"""
from __future__ import annotations

from typing import List

import numpy as np
from llvmlite import ir
from numba import types
from numba.core.extending import intrinsic
from numpy.random.bit_generator import ISeedSequence

from dhs_gen.jit import kernel

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


_MULTIPLIER_HI, _MULTIPLIER_LO = np.uint64(2549297995355413924), np.uint64(4865540595714422341)  # numpy's
# PCG_DEFAULT_MULTIPLIER_128 as (hi, lo) words
LOW64 = (1 << 64) - 1


@intrinsic
def _mul_add_128(typingctx, a_hi, a_lo, m_hi, m_lo, c_hi, c_lo):
    """(hi, lo) uint64 words of a x m + c mod 2^128 for 128-bit a, m, c given as (hi, lo) words."""
    if not all(isinstance(a, types.Integer) and a.bitwidth == 64 and not a.signed
               for a in (a_hi, a_lo, m_hi, m_lo, c_hi, c_lo)):
        return None

    def codegen(context, builder, signature, args):
        i64, i128 = ir.IntType(64), ir.IntType(128)

        def join(high, low):
            return builder.or_(builder.shl(builder.zext(high, i128), ir.Constant(i128, 64)), builder.zext(low, i128))

        value = builder.add(builder.mul(join(args[0], args[1]), join(args[2], args[3])), join(args[4], args[5]))
        return context.make_tuple(builder, signature.return_type, [
            builder.trunc(builder.lshr(value, ir.Constant(i128, 64)), i64), builder.trunc(value, i64)])

    return types.UniTuple(types.uint64, 2)(a_hi, a_lo, m_hi, m_lo, c_hi, c_lo), codegen


@kernel(inline="always")
def pcg64_step(hi, lo, inc_hi, inc_lo):
    """(hi, lo) of PCG64's next 128-bit state: state x multiplier + increment mod 2^128 (uint64 words)."""
    return _mul_add_128(hi, lo, _MULTIPLIER_HI, _MULTIPLIER_LO, inc_hi, inc_lo)


@kernel(inline="always")
def pcg64_output(hi, lo):
    """PCG64's uint64 output of a (new) state: XSL-RR, (hi ^ lo) rotated right by hi >> 58."""
    value, rot = hi ^ lo, hi >> np.uint64(58)
    return (value >> rot) | (value << ((np.uint64(64) - rot) & np.uint64(63)))


@kernel(inline="always")
def pcg64_double(hi, lo):
    """The float64 in [0, 1) numpy's PCG64 makes of the output of a (new) state: (output >> 11) / 2^53."""
    return (pcg64_output(hi, lo) >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@kernel(inline="always")
def pcg64_seed(words):
    """(state hi, state lo, increment hi, increment lo) of ``PCG64(seed sequence)`` for the
    sequence's uint64 state ``words`` (4,) (:func:`state_words`): pcg64_set_seed with state
    words[0:2] and sequence words[2:4] (increment = sequence << 1 | 1; step, add, step)."""
    inc_hi = (words[2] << np.uint64(1)) | (words[3] >> np.uint64(63))
    inc_lo = (words[3] << np.uint64(1)) | np.uint64(1)
    hi, lo = pcg64_step(np.uint64(0), np.uint64(0), inc_hi, inc_lo)
    hi, lo = _mul_add_128(hi, lo, np.uint64(0), np.uint64(1), words[0], words[1])
    hi, lo = pcg64_step(hi, lo, inc_hi, inc_lo)
    return hi, lo, inc_hi, inc_lo


def pcg64_words(state: dict) -> np.ndarray:
    """uint64 (state hi, state lo, increment hi, increment lo) of a PCG64 bit generator's ``state``
    (the dict ``rng.bit_generator.state`` gives)."""
    words = state["state"]
    return np.array([words["state"] >> 64, words["state"] & LOW64, words["inc"] >> 64, words["inc"] & LOW64],
                    np.uint64)


def set_pcg64_state(rng: np.random.Generator, state: dict, hi: int, lo: int) -> None:
    """Set a PCG64 Generator's 128-bit state to the (hi, lo) words; the rest of ``state`` (its
    ``bit_generator.state`` as read before: the increment and the pending 32-bit half) is kept."""
    state["state"]["state"] = (int(hi) << 64) | int(lo)
    rng.bit_generator.state = state
