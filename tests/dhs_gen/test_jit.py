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


def test_kernel_caches_are_keyed_by_every_kernel_module(tmp_path):
    """numba checks a cache only against its own file, so a kernel inlining another module's
    function or constant (image_source -> kernels.sie_source_position, N_SIE) would load code
    compiled against that module's old version; dhs_gen kernels' caches carry a hash of all
    kernel modules, which changes when any of them does (and only then)."""
    from dhs_gen import jit
    from dhs_gen.lensing.image_source import _sum_sie_subpixels

    locator = _sum_sie_subpixels._cache._impl.locator
    assert locator.get_source_stamp()[1] == jit.KERNEL_SOURCES_STAMP
    assert isinstance(locator, jit._KernelSourcesStamped)
    assert not isinstance(_axpy._cache._impl.locator, jit._KernelSourcesStamped)  # tests/: numba's own locator
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "k.py").write_text("from dhs_gen.jit import kernel\nN = 1\n")
    (tmp_path / "plain.py").write_text("X = 1\n")
    before = jit.kernel_sources_stamp(str(tmp_path))
    (tmp_path / "plain.py").write_text("X = 2\n")
    assert jit.kernel_sources_stamp(str(tmp_path)) == before
    (tmp_path / "sub" / "k.py").write_text("from dhs_gen.jit import kernel\nN = 2\n")
    assert jit.kernel_sources_stamp(str(tmp_path)) != before
