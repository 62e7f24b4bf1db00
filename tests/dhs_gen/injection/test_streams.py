"""Per-row random streams: the batch construction gives numpy's default_rng([seed, stream])."""
import numpy as np
import pytest

from dhs_gen.injection.streams import generators, state_words


def test_state_words_are_seed_sequence_states():
    """SeedSequence([seed, stream]).generate_state(4, uint64), word for word: one- and two-word
    seeds (below and above 2**32), 0, the int64 maximum, and several streams."""
    rng = np.random.default_rng(1)
    seeds = np.concatenate([[0, 1, 2**32 - 1, 2**32, 2**60 - 1, 2**63 - 1], rng.integers(0, 2**60, 300),
                            rng.integers(0, 2**32, 100)]).astype(np.int64)
    for stream in (0, 1, 2, 3, 2**32 - 1):
        expected = np.array([np.random.SeedSequence([int(s), stream]).generate_state(4, np.uint64) for s in seeds])
        assert np.array_equal(state_words(seeds, stream), expected)


def test_generators_are_default_rng_streams():
    seeds = np.array([0, 7, 2**40 + 3, 123456789012345], np.int64)
    for gen, seed in zip(generators(seeds, 3), seeds):
        ref = np.random.default_rng([int(seed), 3])
        assert gen.bit_generator.state == ref.bit_generator.state
        assert np.array_equal(gen.standard_normal(50), ref.standard_normal(50))
        assert np.array_equal(gen.permutation(8), ref.permutation(8))
    assert generators(np.array([], np.int64), 2) == []
    with pytest.raises(ValueError, match="negative seed"):
        generators(np.array([3, -1]), 2)


def test_compiled_pcg64_is_numpys():
    """pcg64_seed gives the state and increment PCG64 gets from the seed sequence, and
    pcg64_step / pcg64_output continue it as numpy does (random_raw, 64-bit outputs)."""
    from dhs_gen.injection.streams import pcg64_output, pcg64_seed, pcg64_step, pcg64_words
    from dhs_gen.jit import kernel

    @kernel
    def outputs(words, n):
        hi, lo, inc_hi, inc_lo = pcg64_seed(words)
        out = np.empty(n, np.uint64)
        for k in range(n):
            hi, lo = pcg64_step(hi, lo, inc_hi, inc_lo)
            out[k] = pcg64_output(hi, lo)
        return out, np.array([hi, lo, inc_hi, inc_lo])

    seeds = np.array([0, 1, 2**32 - 1, 2**32, 2**63 - 1, 123456789012345], np.int64)
    for words, seed in zip(state_words(seeds, 3), seeds):
        ref = np.random.default_rng([int(seed), 3])
        start = pcg64_words(ref.bit_generator.state)
        got, end = outputs(words, 1000)
        assert np.array_equal(got, ref.bit_generator.random_raw(1000))
        assert np.array_equal(end, pcg64_words(ref.bit_generator.state)) and not np.array_equal(start, end)


def test_compiled_pcg64_doubles_and_state_round_trip_are_numpys():
    """pcg64_double of each new state is what Generator.random gives; set_pcg64_state hands the
    advanced state back to the Generator (its increment and pending 32-bit half kept)."""
    from dhs_gen.injection.streams import pcg64_double, pcg64_step, pcg64_words, set_pcg64_state
    from dhs_gen.jit import kernel

    @kernel
    def doubles(words, n):
        hi, lo = words[0], words[1]
        out = np.empty(n)
        for k in range(n):
            hi, lo = pcg64_step(hi, lo, words[2], words[3])
            out[k] = pcg64_double(hi, lo)
        return out, hi, lo

    for seed in (0, 1, 2**40 + 3):
        ours, ref = np.random.default_rng([seed, 2]), np.random.default_rng([seed, 2])
        ours.integers(7), ref.integers(7)  # a buffered uint32 half pending
        state = ours.bit_generator.state
        got, hi, lo = doubles(pcg64_words(state), 1000)
        assert got.tobytes() == ref.random(1000).tobytes()
        set_pcg64_state(ours, state, hi, lo)
        assert ours.bit_generator.state == ref.bit_generator.state
        assert ours.integers(7) == ref.integers(7) and ours.random() == ref.random()
