"""dhs_gen.lensing.kernels: the float32 math approximations against numpy (float64 truth) over
wide ranges and at the edges, and the SIE + shear map of one point against lenstronomy.

The test kernels are not cached on disk: numba's cache does not notice a change in an inlined
function from another module, so a cached test kernel could test yesterday's code."""
from __future__ import annotations

import numpy as np
import pytest

from dhs_gen.jit import kernel
from dhs_gen.lensing.kernels import (
    N_SIE,
    atan2f,
    exp2f_normal,
    lensed_sersic_block,
    log2_1pf,
    log2f_normal,
    prefer_512_bit_vectors,
    sersic_row_coefficients,
    sersic_unit,
    sie_row_coefficients,
    sie_source_position,
)


@kernel(cache=False)
def _exp2(x, out):
    for i in range(x.size):
        out[i] = exp2f_normal(x[i])
    return out


@kernel(cache=False)
def _log2(x, out):
    for i in range(x.size):
        out[i] = log2f_normal(x[i])
    return out


@kernel(cache=False)
def _log2_1p(x, out):
    for i in range(x.size):
        out[i] = log2_1pf(x[i])
    return out


@kernel(cache=False)
def _atan2(y, x, out):
    for i in range(x.size):
        out[i] = atan2f(y[i], x[i])
    return out


@kernel(cache=False)
def _source_positions(coef, x, y, bx, by):
    for r in range(coef.shape[0]):
        c = coef[r]
        for i in range(x.size):
            bx[r, i], by[r, i] = sie_source_position(c, x[i], y[i])


def _f32(values):
    return np.asarray(values, dtype=np.float32)


def test_exp2_relative_error_over_the_normal_range():
    x = np.random.default_rng(0).uniform(-126, 127, 1 << 18).astype(np.float32)
    out = _exp2(x, np.empty_like(x))
    assert out.dtype == np.float32
    assert np.max(np.abs(out / np.exp2(x.astype(np.float64)) - 1)) < 2e-7


def test_exp2_edges_and_clamping():
    x = _f32([-1e30, -200, -126.5, -126, -1e-30, 0, 1e-30, 1, 126.5, 127, 127.5, 1e30])
    out = _exp2(x, np.empty_like(x))
    assert out[0] == out[1] == out[2] == out[3] == np.float32(2.0**-126)  # clamped to the smallest normal
    np.testing.assert_allclose(out[3:10], np.exp2(x[3:10].astype(np.float64)), rtol=2e-7)
    assert out[5] == 1.0 and out[7] == 2.0 and out[9] == np.float32(2.0**127)  # exact at integers
    assert out[10] == out[11] == np.float32(2.0**127)  # clamped, finite


def test_log2_relative_error_over_the_normal_range():
    x = (10.0 ** np.random.default_rng(1).uniform(-37.9, 38.5, 1 << 18)).astype(np.float32)
    assert x.min() >= np.finfo(np.float32).tiny
    out = _log2(x, np.empty_like(x))
    ref = np.log2(x.astype(np.float64))
    assert np.max(np.abs(out - ref) / np.maximum(np.abs(ref), 1.0)) < 2e-7
    near_one = (1 + np.random.default_rng(2).uniform(-1e-3, 1e-3, 4096)).astype(np.float32)
    ref = np.log2(near_one.astype(np.float64))
    out = _log2(near_one, np.empty_like(near_one))
    nonzero = ref != 0
    assert np.max(np.abs(out[nonzero] / ref[nonzero] - 1)) < 2e-7


def test_log2_edges():
    x = _f32([1.1754944e-38, 0.5, 1.0, 2.0, 1024.0, 3.4e38])
    out = _log2(x, np.empty_like(x))
    np.testing.assert_allclose(out, np.log2(x.astype(np.float64)), rtol=2e-7)
    assert out[0] == -126 and out[1] == -1 and out[2] == 0 and out[3] == 1 and out[4] == 10  # exact at powers of two


def test_log2_1p_keeps_small_arguments():
    rng = np.random.default_rng(7)
    w = np.concatenate([rng.uniform(-1, 1, 4096) * 10.0 ** rng.uniform(-12, 0, 4096),
                        10.0 ** rng.uniform(0, 30, 4096), [0.0, -0.999]]).astype(np.float32)
    out = _log2_1p(w, np.empty_like(w))
    ref = np.log1p(w.astype(np.float64)) / np.log(2.0)
    nonzero = ref != 0
    assert np.max(np.abs(out[nonzero] / ref[nonzero] - 1)) < 3e-7
    assert out[~nonzero].tolist() == [0.0]
    tiny = _f32([1e-6])
    assert abs(_log2f_of_one_plus(tiny) - np.log1p(1e-6) / np.log(2)) > 1e-2 * np.log1p(1e-6) / np.log(2)


def _log2f_of_one_plus(w):
    """log2f_normal(1 + w) without the correction: what log2_1pf improves on (off by ~5% at w = 1e-6)."""
    return float(_log2(np.float32(1) + w, np.empty_like(w))[0])


def test_atan2_relative_error_in_all_quadrants_and_scales():
    rng = np.random.default_rng(3)
    n = 1 << 18
    y = (rng.standard_normal(n) * 10.0 ** rng.uniform(-30, 30, n)).astype(np.float32)
    x = (rng.standard_normal(n) * 10.0 ** rng.uniform(-30, 30, n)).astype(np.float32)
    out = _atan2(y, x, np.empty_like(x))
    ref = np.arctan2(y.astype(np.float64), x.astype(np.float64))
    big = np.abs(ref) > 1e-30  # below that the float32 quotient underflows (numpy float32 too)
    assert np.max(np.abs(out[big] / ref[big] - 1)) < 3e-7
    assert np.max(np.abs(out - ref)) < 5e-7


def test_atan2_edges():
    y = _f32([0, 0, 1, -1, 1e-30, -1e-30, 1, -1, 3e38, 1e-38, 2.0])
    x = _f32([0, -1, 0, 0, -1, -1, 1, -1, 1e-38, 3e38, -1e-40])
    out = _atan2(y, x, np.empty_like(x))
    np.testing.assert_allclose(out, np.arctan2(y.astype(np.float64), x.astype(np.float64)), rtol=3e-7, atol=1e-37)
    assert out[0] == 0.0


def _lenses(n, seed):
    rng = np.random.default_rng(seed)
    q = rng.uniform(0.3, 1.0, n)
    q[0] = 1.0  # an exactly round SIE
    phi = rng.uniform(0, np.pi, n)
    e = (1 - q) / (1 + q)
    return dict(theta_E=rng.uniform(0.3, 3.0, n), e1=e * np.cos(2 * phi), e2=e * np.sin(2 * phi),
                center_x=rng.normal(0, 0.1, n), center_y=rng.normal(0, 0.1, n),
                gamma1=rng.normal(0, 0.05, n), gamma2=rng.normal(0, 0.05, n))


def test_sie_source_position_matches_lenstronomy():
    from lenstronomy.LensModel.lens_model import LensModel

    lens = _lenses(6, seed=4)  # row 0 round: the atanh term must keep its precision as e -> 0
    coef = sie_row_coefficients(lens)
    assert coef.shape == (6, N_SIE) and coef.dtype == np.float32
    rng = np.random.default_rng(5)
    x, y = rng.uniform(-8, 8, (2, 2000)).astype(np.float32)
    x[0], y[0] = lens["center_x"][0], lens["center_y"][0]  # the lens centre (to float32 rounding)
    bx, by = np.empty((6, 2000), np.float32), np.empty((6, 2000), np.float32)
    _source_positions(coef, x, y, bx, by)
    # at the centre the SIE deflection has magnitude b in a direction set by rounding: finite, |alpha| <= theta_E
    assert np.isfinite(bx).all() and np.isfinite(by).all()
    assert np.hypot(bx[0, 0] - 0.0, by[0, 0] - 0.0) < lens["theta_E"][0] + 1e-3 + 0.2
    x, y, bx, by = x[1:], y[1:], bx[:, 1:], by[:, 1:]
    model = LensModel(["SIE", "SHEAR"])
    for i in range(6):
        kw = [{k: float(lens[k][i]) for k in ("theta_E", "e1", "e2", "center_x", "center_y")},
              {"gamma1": float(lens["gamma1"][i]), "gamma2": float(lens["gamma2"][i]), "ra_0": 0.0, "dec_0": 0.0}]
        rx, ry = model.ray_shooting(x.astype(np.float64), y.astype(np.float64), kw)
        # a few float32 ulp of |x| <= 8" (ulp 9.5e-7"); log2 of the ratio without log1p gave 9e-5" at q = 1
        assert np.max(np.abs(bx[i] - rx)) < 4e-6, i
        assert np.max(np.abs(by[i] - ry)) < 4e-6, i


def test_sie_source_position_keeps_precision_near_the_minor_axis():
    """Where e|y'| -> d (points on the lens's y' axis of a flattened lens), d - e|y'| cancels; the
    map must still match lenstronomy (log2 of 1 + w formed with cancellation: 2.7e-6" here)."""
    from lenstronomy.LensModel.lens_model import LensModel

    lens = dict(theta_E=np.array([2.0]), e1=np.array([0.5]), e2=np.array([0.1]), center_x=np.array([0.04]),
                center_y=np.array([-0.06]), gamma1=np.array([0.03]), gamma2=np.array([-0.02]))
    phi = 0.5 * np.arctan2(0.1, 0.5)
    t = np.linspace(-6, 6, 4001)
    t = t[np.abs(t) > 0.1]  # at the centre the map is discontinuous (not a precision question)
    off = np.random.default_rng(8).normal(0, 1e-3, t.size)
    x = (0.04 - t * np.sin(phi) + off * np.cos(phi)).astype(np.float32)
    y = (-0.06 + t * np.cos(phi) + off * np.sin(phi)).astype(np.float32)
    bx, by = np.empty((1, t.size), np.float32), np.empty((1, t.size), np.float32)
    _source_positions(sie_row_coefficients(lens), x, y, bx, by)
    kw = [{k: float(lens[k][0]) for k in ("theta_E", "e1", "e2", "center_x", "center_y")},
          {"gamma1": 0.03, "gamma2": -0.02, "ra_0": 0.0, "dec_0": 0.0}]
    rx, ry = LensModel(["SIE", "SHEAR"]).ray_shooting(x.astype(np.float64), y.astype(np.float64), kw)
    assert max(np.max(np.abs(bx[0] - rx)), np.max(np.abs(by[0] - ry))) < 1.5e-6


def test_sie_source_position_catches_a_sign_error():
    """The tolerance above resolves the deflection: flipping the shear sign moves points by ~1e-2"."""
    lens = _lenses(2, seed=6)
    good, bad = sie_row_coefficients(lens), sie_row_coefficients(dict(lens, gamma1=-lens["gamma1"]))
    x = y = _f32([1.0, -2.0, 3.0])
    out = [np.empty((2, 3), np.float32) for _ in range(4)]
    _source_positions(good, x, y, out[0], out[1])
    _source_positions(bad, x, y, out[2], out[3])
    assert np.max(np.abs(out[0] - out[2])) > 1e-3


@kernel(cache=False)
def _unit_block_and_fused(lc, sc, xs, ys, dx, dy, block, fused):
    ta, tb = np.empty_like(xs), np.empty_like(xs)
    lensed_sersic_block(lc, sc, xs, ys, xs.size, dx, dy, block, ta, tb)
    for t in range(xs.size):
        bx, by = sie_source_position(lc, xs[t] + dx, ys[t] + dy)
        fused[t] += sersic_unit(sc, bx, by)


def test_lensed_sersic_block_is_sersic_unit_at_the_sie_source_position():
    """The six-loop block equals the fused per-point expression it splits (to float32 rounding,
    amplified by the exponent: the compiler may contract multiply-adds differently), and both are
    lenstronomy's amp = 1 SERSIC_ELLIPSE at the lensed position (float64)."""
    from lenstronomy.LensModel.lens_model import LensModel
    from lenstronomy.LightModel.light_model import LightModel

    lens = {k: v[1:] for k, v in _lenses(2, seed=11).items()}  # row 0 is round
    source = dict(R_sersic=np.array([0.3]), n_sersic=np.array([2.5]), e1=np.array([0.2]), e2=np.array([-0.1]),
                  center_x=np.array([0.15]), center_y=np.array([-0.05]))
    rng = np.random.default_rng(12)
    xs, ys = _f32(rng.uniform(-4, 4, 4099)), _f32(rng.uniform(-4, 4, 4099))
    dx, dy = np.float32(0.0327), np.float32(-0.0655)
    block, fused = np.zeros_like(xs), np.zeros_like(xs)
    args = (sie_row_coefficients(lens)[0], sersic_row_coefficients(source)[0], xs, ys, dx, dy)
    _unit_block_and_fused(*args, block, fused)
    np.testing.assert_allclose(block, fused, rtol=2e-5, atol=0)
    twice, fused = block.copy(), np.zeros_like(xs)
    _unit_block_and_fused(*args, twice, fused)
    np.testing.assert_array_equal(twice, 2 * block)  # it accumulates
    kw = [{k: float(lens[k][0]) for k in ("theta_E", "e1", "e2", "center_x", "center_y")},
          {"gamma1": float(lens["gamma1"][0]), "gamma2": float(lens["gamma2"][0]), "ra_0": 0.0, "dec_0": 0.0}]
    x64, y64 = (xs + dx).astype(np.float64), (ys + dy).astype(np.float64)  # the float32 points the kernel sees
    bx, by = LensModel(["SIE", "SHEAR"]).ray_shooting(x64, y64, kw)
    ref = LightModel(["SERSIC_ELLIPSE"]).surface_brightness(
        bx, by, [{"amp": 1.0, **{k: float(v[0]) for k, v in source.items()}}])
    rel = np.abs(block - ref) / np.maximum(ref, 1e-3 * ref.max())
    assert rel.max() < 1e-4  # float32 beta = x - alpha near the steep core of the n = 2.5 source: 7e-5


@pytest.mark.parametrize("fn", [exp2f_normal, log2f_normal, log2_1pf, atan2f, sie_source_position])
def test_device_functions_are_inlined(fn):
    assert fn.targetoptions.get("inline") == "always"


@kernel(cache=False, inline="always")
def _scaled_sum(x, out):
    for i in range(x.size):
        out[i] = x[i] * np.float32(3.0) + np.float32(1.0)
    return out


@kernel(cache=False)
def _wide_scaled_sum(x, out):
    prefer_512_bit_vectors()
    return _scaled_sum(x, out)


@kernel(cache=False)
def _plain_scaled_sum(x, out):
    return _scaled_sum(x, out)


def test_prefer_512_bit_vectors_widens_the_loop_on_avx512_hosts():
    import llvmlite.binding as ll

    x = np.arange(1000, dtype=np.float32)
    wide, plain = _wide_scaled_sum(x, np.empty_like(x)), _plain_scaled_sum(x, np.empty_like(x))
    np.testing.assert_array_equal(wide, x * np.float32(3.0) + np.float32(1.0))
    np.testing.assert_array_equal(plain, wide)
    if "+avx512f" not in ll.get_host_cpu_features().flatten().split(","):
        pytest.skip("host without AVX-512: the attribute has nothing to widen")
    # (LLVM's default tuning for most AVX-512 CPUs, this one included, keeps the plain loop at
    # 256-bit ymm registers; not asserted, as it is LLVM's choice per CPU model)
    assert "zmm" in _wide_scaled_sum.inspect_asm(_wide_scaled_sum.signatures[0])
