"""render_lensed_sersic: fast engine vs lenstronomy, flux conservation, PSF centring, bad inputs."""
from __future__ import annotations

import numpy as np
import pytest

from dhs_gen.lensing import LensingInputError, render_lensed_sersic, total_flux
from dhs_gen.lensing.magnification import magnification

L2_TOL, FLUX_TOL = 1e-5, 1e-4  # fast vs lenstronomy: relative L2 per stamp and band, relative total flux


def _rel_l2(a, b):
    """Per stamp and band ||a - b|| / ||b||."""
    n = a.shape[0] * a.shape[1]
    return np.linalg.norm((a - b).reshape(n, -1), axis=1) / np.linalg.norm(b.reshape(n, -1), axis=1)


def _agreement(configs, n, seed):
    lens, source, psf = configs(n, seed=seed)
    fast = render_lensed_sersic(lens, source, psf)
    ref = render_lensed_sersic(lens, source, psf, backend="lenstronomy")
    assert fast.dtype == np.float32 and fast.shape == (n, 3, 64, 64)
    flux_err = np.abs(total_flux(fast) / total_flux(ref) - 1)
    rel = _rel_l2(fast, ref)
    assert flux_err.max() <= FLUX_TOL, flux_err.max()
    assert rel.max() <= L2_TOL, rel.max()


def test_fast_matches_lenstronomy(configs):
    _agreement(configs, 12, seed=1)


@pytest.mark.slow
def test_fast_matches_lenstronomy_few_hundred(configs):
    _agreement(configs, 300, seed=2)


def test_tolerance_catches_a_one_percent_physics_error(configs):
    lens, source, psf = configs(6, seed=13)
    good = render_lensed_sersic(lens, source, psf)
    for key, where in (("theta_E", lens), ("R_sersic", source)):
        wrong = dict(where, **{key: where[key] * 1.01})
        bad = render_lensed_sersic(wrong if where is lens else lens, wrong if where is source else source, psf)
        assert _rel_l2(bad, good).min() > 30 * L2_TOL, key


def test_lenstronomy_used_well_matches_per_band_image_models(configs):
    from dhs_gen.lensing.geometry import sersic_amp_from_flux
    from dhs_gen.lensing.reference import render_sersic_per_band_models, render_sersic_reference
    from dhs_gen.lensing.render import band_fluxes, psf_kernels

    lens, source, psf = configs(3, seed=14)
    amps = sersic_amp_from_flux(band_fluxes(source), source["R_sersic"][:, None], source["n_sersic"][:, None])
    args = (lens, source, amps, psf_kernels(psf, 64), 64, 0.262, 4)
    assert _rel_l2(render_sersic_reference(*args), render_sersic_per_band_models(*args)).max() < 1e-6


def test_skipped_subpixels_hold_under_a_millionth_of_the_light(configs, monkeypatch):
    from dhs_gen.lensing import fast

    lens, source, psf = configs(60, seed=15)
    source["R_sersic"][:10] = 0.03  # compact sources and sources on the caustic (bright, thin arcs)
    source["center_x"][10:20] = lens["theta_E"][10:20] * 0.02
    from dhs_gen.lensing.params import validate_lens, validate_sersic
    from dhs_gen.lensing.render import lensed_sersic_unit_images

    def unit():
        return lensed_sersic_unit_images(validate_lens(lens), validate_sersic(source), 64, 0.262, 4)

    cut, cut_unit = render_lensed_sersic(lens, source, psf), unit()
    monkeypatch.setattr(fast, "SUPERSAMPLE_TAIL", 0.0)
    monkeypatch.setattr(fast, "central_radius", lambda theta_e, scale: np.full(len(theta_e), 1e3))
    full, full_unit = render_lensed_sersic(lens, source, psf), unit()
    assert (cut_unit == 0).mean() > 0.3 and not (full_unit == 0).any()  # the cut did skip pixels
    assert _rel_l2(cut, full).max() < 3e-6
    np.testing.assert_allclose(total_flux(cut), total_flux(full), rtol=3e-6)


def test_faint_tail_cut_drops_at_most_the_tail():
    from dhs_gen.lensing.kernels import faint_tail_cut

    rng = np.random.default_rng(0)
    values = (10.0 ** rng.uniform(-12, 2, (4, 4096))).astype(np.float32)
    values[3] = 0.0
    for tail in (1e-3, 1e-6):
        thr = np.array([[faint_tail_cut(row, tail)] for row in values], dtype=np.float32)
        dropped = np.where(values < thr, values, 0).sum(axis=1, dtype=np.float64)
        assert np.all(dropped <= tail * values.sum(axis=1, dtype=np.float64))
        assert np.all((values < thr).sum(axis=1)[:3] > 1000)  # and it does drop the faint pixels
        assert thr[3, 0] == 0  # an empty row keeps everything


def test_convolve_bands_matches_fftconvolve_for_symmetric_and_other_kernels():
    from scipy.signal import fftconvolve

    from dhs_gen.lensing.fast import convolve_bands
    from dhs_gen.lensing.render import psf_kernels

    rng = np.random.default_rng(1)
    pixels = rng.random((2, 40, 40)).astype(np.float32)
    symmetric = psf_kernels(np.array([[0.9, 1.3, 2.0], [1.1, 1.1, 1.6]]), 40)
    skewed = symmetric * (1 + 0.2 * np.arange(symmetric.shape[-1]))[None, None, None, :]
    for kernels in (symmetric, skewed.astype(np.float32)):
        out = convolve_bands(pixels, kernels)
        for i in range(2):
            for b in range(3):
                ref = fftconvolve(pixels[i].astype(np.float64), kernels[i, b].astype(np.float64), mode="same")
                assert np.abs(out[i, b] - ref).max() < 1e-6 * np.abs(ref).max()


def test_convolve_bands_reused_scratch_carries_nothing_between_calls():
    """convolve_bands reuses per-thread scratch arrays: a call gives the same bits whatever ran
    before it (other images, other shapes, the general-kernel path, a returned array kept)."""
    from dhs_gen.lensing.fast import convolve_bands
    from dhs_gen.lensing.render import psf_kernels

    rng = np.random.default_rng(4)
    a, b = (rng.random((3, 40, 40)).astype(np.float32) for _ in range(2))
    kernels = psf_kernels(rng.uniform(0.9, 1.8, (3, 3)), 40)
    first = convolve_bands(a, kernels, symmetric=True)
    kept = first.copy()
    convolve_bands(b * 1e3, kernels[:, ::-1], symmetric=True)
    convolve_bands(a[:2, :30, :36], kernels[:2, :1, 8:-8, 8:-8])
    convolve_bands(b, (kernels * np.linspace(1, 2, kernels.shape[-1])).astype(np.float32))
    assert np.array_equal(convolve_bands(a, kernels, symmetric=True), kept)
    assert np.array_equal(first, kept)


def test_flux_conservation_is_magnification_times_source_flux(configs):
    lens, source, psf = configs(24, seed=3, flux_r=2.5)
    source["R_sersic"] = np.minimum(source["R_sersic"], 0.3)
    source["n_sersic"] = np.minimum(source["n_sersic"], 2.0)  # light well inside the 16.8" stamp
    lens["theta_E"] = np.minimum(lens["theta_E"], 2.5)
    mu = magnification(lens, source, supersampling=8)
    images = render_lensed_sersic(lens, source, psf)
    expected = mu[:, None] * np.stack([source["flux_g"], source["flux_r"], source["flux_z"]], axis=1)
    ratio = total_flux(images) / expected
    assert np.all(mu > 1.5)  # strongly lensed, not a trivial mu = 1
    np.testing.assert_allclose(ratio, 1.0, atol=0.02)


def test_sis_magnification_matches_analytic():
    # SIS: a small source at beta < theta_E has total magnification 2 theta_E / beta
    theta_e = np.array([1.0, 1.5, 2.0])
    beta = np.array([0.5, 0.5, 0.8])
    zeros = np.zeros(3)
    lens = dict(theta_E=theta_e, e1=zeros, e2=zeros, center_x=zeros, center_y=zeros, gamma1=zeros, gamma2=zeros)
    source = dict(R_sersic=np.full(3, 0.05), n_sersic=np.ones(3), e1=zeros, e2=zeros, center_x=beta, center_y=zeros)
    np.testing.assert_allclose(magnification(lens, source, supersampling=16), 2 * theta_e / beta, rtol=0.02)


def _unlensed(x0=0.0, y0=0.0, flux=(1.0, 2.0, 3.0), r=0.05, fwhm=1.2, size=64):
    one = np.ones(1)
    lens = dict(theta_E=1e-4 * one, e1=0 * one, e2=0 * one, center_x=0 * one, center_y=0 * one,
                gamma1=0 * one, gamma2=0 * one)
    source = dict(R_sersic=r * one, n_sersic=one, e1=0 * one, e2=0 * one, center_x=x0 * one, center_y=y0 * one,
                  flux_g=flux[0] * one, flux_r=flux[1] * one, flux_z=flux[2] * one)
    return render_lensed_sersic(lens, source, np.full((1, 3), fwhm), stamp_size=size)


def test_unlensed_total_flux_is_source_flux_in_nanomaggies():
    images = _unlensed(flux=(0.1, 1.0, 10.0), r=0.2)
    np.testing.assert_allclose(total_flux(images)[0], [0.1, 1.0, 10.0], rtol=0.002)  # s = 4 quadrature of 0.2"


@pytest.mark.parametrize("size", [64, 65])
def test_point_source_stays_centred_and_axes_follow_convention(size):
    from dhs_gen.psf import kernel_centroid

    c = (size - 1) / 2
    for x0, y0 in [(0.0, 0.0), (3 * 0.262, -2 * 0.262)]:
        images = _unlensed(x0=x0, y0=y0, size=size)
        for band in range(3):
            row, col = kernel_centroid(images[0, band])
            assert abs(col - (c + x0 / 0.262)) < 0.01 and abs(row - (c + y0 / 0.262)) < 0.01


def test_batch_result_does_not_depend_on_batching(configs):
    lens, source, psf = configs(11, seed=4)
    full = render_lensed_sersic(lens, source, psf)
    for i in (0, 7, 10):
        one = render_lensed_sersic({k: v[i:i + 1] for k, v in lens.items()},
                                   {k: v[i:i + 1] for k, v in source.items()}, psf[i:i + 1])
        np.testing.assert_array_equal(one[0], full[i])


def test_multipoles_fast_matches_lenstronomy(configs):
    lens, source, psf = configs(3, seed=5)
    lens.update(a3=np.array([0.01, -0.02, 0.005]), phi3=np.array([0.1, 1.0, 2.0]),
                a4=np.array([0.02, 0.01, -0.01]), phi4=np.array([0.3, 0.0, 1.5]))
    fast = render_lensed_sersic(lens, source, psf)
    ref = render_lensed_sersic(lens, source, psf, backend="lenstronomy")
    plain = render_lensed_sersic({k: lens[k] for k in list(lens)[:7]}, source, psf)
    assert _rel_l2(fast, ref).max() <= L2_TOL
    np.testing.assert_allclose(total_flux(fast), total_flux(ref), rtol=FLUX_TOL)
    assert np.linalg.norm(plain - ref) / np.linalg.norm(ref) > 0.01  # the multipoles do change the image



def test_epl_fast_matches_lenstronomy(configs):
    lens, source, psf = configs(4, seed=12)
    lens["e1"][0], lens["e2"][0] = 0.45, 0.1  # q ~ 0.37: a slowly converging series
    lens["gamma"] = np.array([1.7, 2.0, 2.3, 2.1])
    fast = render_lensed_sersic(lens, source, psf)
    ref = render_lensed_sersic(lens, source, psf, backend="lenstronomy")
    np.testing.assert_allclose(total_flux(fast), total_flux(ref), rtol=FLUX_TOL)
    assert _rel_l2(fast, ref).max() <= L2_TOL
    sie = render_lensed_sersic({k: v for k, v in lens.items() if k != "gamma"}, source, psf)
    np.testing.assert_allclose(fast[1], sie[1], rtol=0, atol=1e-4 * sie[1].max())  # gamma = 2 is the SIE
    assert np.linalg.norm(fast[0] - sie[0]) / np.linalg.norm(sie[0]) > 0.05  # the slope matters


@pytest.mark.parametrize("mutate, message", [
    (lambda ln, s, p: ln.pop("gamma2"), "lacks key"),
    (lambda ln, s, p: ln.update(bogus=ln["e1"]), "unknown key"),
    (lambda ln, s, p: ln["theta_E"].__setitem__(2, np.nan), r"theta_E.*row 2"),
    (lambda ln, s, p: ln["theta_E"].__setitem__(1, -1.0), r"theta_E.*row 1"),
    (lambda ln, s, p: s["R_sersic"].__setitem__(3, 0.0), r"R_sersic.*row 3"),
    (lambda ln, s, p: s["flux_r"].__setitem__(0, -1.0), r"flux_r.*row 0"),
    (lambda ln, s, p: s.update(center_x=s["center_x"][:2]), "has 2 rows"),
    (lambda ln, s, p: p.__setitem__((1, 2), 0.0), r"psf_fwhm row 1 band z"),
    (lambda ln, s, p: s.update(e1=np.full(4, 0.95)), "ellipticity"),
])
def test_bad_inputs_raise_clear_errors(configs, mutate, message):
    lens, source, psf = configs(4, seed=6)
    mutate(lens, source, psf)
    with pytest.raises(LensingInputError, match=message):
        render_lensed_sersic(lens, source, psf)


def test_bad_options_and_non_finite_output_are_errors(configs, monkeypatch):
    lens, source, psf = configs(2, seed=7)
    with pytest.raises(LensingInputError, match="backend"):
        render_lensed_sersic(lens, source, psf, backend="galsim")
    with pytest.raises(LensingInputError, match="psf_fwhm must have shape"):
        render_lensed_sersic(lens, source, psf[:, :2])
    with pytest.raises(LensingInputError, match="supersampling"):
        render_lensed_sersic(lens, source, psf, supersampling=0)
    from dhs_gen.lensing import fast

    def broken(pixels, kernels, scale=None, out=None, symmetric=None):
        out = np.ones((len(pixels), 3) + pixels.shape[1:], dtype=np.float32) if out is None else out
        out[...] = 1
        out[1, 0, 5, 5] = np.inf
        return out

    monkeypatch.setattr(fast, "convolve_bands", broken)
    with pytest.raises(LensingInputError, match=r"row\(s\) \[1\]"):
        render_lensed_sersic(lens, source, psf)


def test_empty_batch_gives_empty_stamps():
    e = np.zeros(0)
    lens = dict(theta_E=e, e1=e, e2=e, center_x=e, center_y=e, gamma1=e, gamma2=e)
    source = dict(R_sersic=e, n_sersic=e, e1=e, e2=e, center_x=e, center_y=e, flux_g=e, flux_r=e, flux_z=e)
    for backend in ("fast", "lenstronomy"):
        out = render_lensed_sersic(lens, source, np.zeros((0, 3)), backend=backend)
        assert out.shape == (0, 3, 64, 64) and out.dtype == np.float32
    assert magnification(lens, source).shape == (0,)


def test_point_magnification_of_an_sis():
    from dhs_gen.lensing.magnification import point_magnification

    zero = np.zeros(2)
    lens = dict(theta_E=np.array([1.0, 2.0]), e1=zero, e2=zero, center_x=zero, center_y=zero, gamma1=zero,
                gamma2=zero)
    # SIS: mu(r) = 1 / (1 - theta_E / r): r = 2 theta_E -> 2; r = theta_E / 2 -> -1 (saddle image)
    np.testing.assert_allclose(point_magnification(lens, np.array([2.0, 1.0]), zero), [2.0, -1.0], rtol=1e-3)


def test_pixel_centres_are_cached_read_only_row_major_centres():
    """The pixel-centre grid is built once per (stamp, scale) (the same read-only arrays on a
    repeat call) and holds x = (col - (H-1)/2) p, y = (row - (H-1)/2) p, row-major."""
    from dhs_gen.lensing.render import _pixel_centres

    x, y = _pixel_centres(5, 0.262)
    again = _pixel_centres(5, 0.262)
    assert again[0] is x and again[1] is y
    assert not x.flags.writeable and not y.flags.writeable
    rows, cols = np.indices((5, 5))
    np.testing.assert_array_equal(x, ((cols - 2) * 0.262).astype(np.float32).ravel())
    np.testing.assert_array_equal(y, ((rows - 2) * 0.262).astype(np.float32).ravel())
