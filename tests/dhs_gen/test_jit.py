"""dhs_gen.jit: compiled kernels behave like the numpy they replace."""
import numpy as np

from dhs_gen.jit import kernel, kernel_strict


@kernel
def _axpy(a, x, y, out):
    for i in range(x.size):
        out[i] = a * x[i] + y[i]
    return out


@kernel_strict
def _count_nan(x):
    n = 0
    for v in x:
        if v != v:
            n += 1
    return n


def test_kernel_matches_numpy_and_keeps_float32():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal(1000).astype(np.float32), rng.standard_normal(1000).astype(np.float32)
    out = _axpy(np.float32(2.5), x, y, np.empty_like(x))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, np.float32(2.5) * x + y, rtol=1e-6, atol=1e-6)


def test_strict_kernel_sees_nan():
    assert _count_nan(np.array([1.0, np.nan, 2.0, np.nan])) == 2
