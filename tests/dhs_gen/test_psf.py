"""PSF kernels: odd, centred, normalised, right FWHM; the survey psfsize (NEA-FWHM) convention;
PSFEx models read at a position; no shifts."""
from __future__ import annotations

import numpy as np
import pytest

from dhs_gen.psf import (
    PSFError,
    PSFExModel,
    convolve_same,
    kernel_centroid,
    moffat_fwhm_for_psfsize,
    moffat_kernel,
    moffat_kernels,
    nea_fwhm,
    psfsize_kernels,
)

PIXEL_SCALE = 0.262


def measured_fwhm(kernel: np.ndarray) -> float:
    """Half-maximum FWHM [pixels] from a cubic-spline fit of the central row profile."""
    from scipy.interpolate import CubicSpline
    from scipy.optimize import brentq

    c = kernel.shape[0] // 2
    profile = CubicSpline(np.arange(kernel.shape[1]) - c, kernel[c, :].astype(np.float64))
    half = profile(0.0) / 2
    return 2 * brentq(lambda r: profile(r) - half, 0.0, c)


@pytest.mark.parametrize("fwhm", [3.0, 4.5, 6.5])
def test_moffat_fwhm_normalisation_centring(fwhm):
    k = moffat_kernel(fwhm, size=41)
    assert k.shape == (41, 41) and k.dtype == np.float32
    assert abs(k.sum() - 1) < 1e-6
    assert np.allclose(kernel_centroid(k), (20, 20), atol=1e-6)
    assert abs(measured_fwhm(k) - fwhm) / fwhm < 0.02


def test_size_rules():
    assert moffat_kernel(4.0, size=33, max_size=21).shape == (21, 21)
    assert moffat_kernel(4.0, size=33, max_size=20).shape == (19, 19)  # clipped to odd
    with pytest.raises(PSFError, match="odd"):
        moffat_kernel(4.0, size=32)
    with pytest.raises(PSFError, match="FWHM"):
        moffat_kernel(-1.0)
    batch = moffat_kernels([3.0, 5.0], size=25)
    np.testing.assert_allclose(batch[1], moffat_kernel(5.0, size=25))


def test_moffat_noise_equivalent_width():
    assert abs(nea_fwhm(moffat_kernel(5.0, size=65)) / 5.0 - 1.232) < 0.005


@pytest.mark.parametrize("size", [33, 21])
def test_psfsize_kernels_have_the_survey_noise_equivalent_width(size):
    """legacypipe psfsize = NEA-FWHM: the kernel for psfsize 0.9-1.8" has that NEA-FWHM within 1%
    (the old Moffat with half-maximum FWHM = psfsize had 1.23x), centred and unit sum."""
    psfsize = np.linspace(0.9, 1.8, 10)
    kernels = psfsize_kernels(psfsize, size=size)
    assert kernels.shape == (10, size, size) and kernels.dtype == np.float32
    measured = np.array([nea_fwhm(k) for k in kernels]) * PIXEL_SCALE
    np.testing.assert_allclose(measured, psfsize, rtol=0.01)
    np.testing.assert_allclose(kernels.sum(axis=(1, 2)), 1.0, rtol=1e-5)
    for k in kernels:
        assert np.allclose(kernel_centroid(k), (size // 2, size // 2), atol=1e-4)
    # the half-maximum width is what makes the NEA match: 0.81 x psfsize for beta 3.5
    halfmax = moffat_fwhm_for_psfsize(psfsize, size=size)
    np.testing.assert_allclose(kernels, moffat_kernels(halfmax / PIXEL_SCALE, size=size), atol=1e-7)
    assert np.all((halfmax / psfsize > 0.80) & (halfmax / psfsize < 0.83))
    # any input shape, e.g. (B, 3) per-band psfsize
    assert psfsize_kernels(np.full((4, 3), 1.2), size=size).shape == (4, 3, size, size)


def test_psfsize_bad_values_are_clear():
    with pytest.raises(PSFError, match="psfsize"):
        psfsize_kernels([1.2, np.nan])
    with pytest.raises(PSFError, match="outside"):
        psfsize_kernels([0.1])  # narrower than a pixel-sampled delta function


def test_psfsize_kernels_reproduce_the_noise_of_real_psfex_models(shared_data):
    """The 14 real DECam PSFEx models: their psfsize in legacypipe's convention (NEA-FWHM of the
    pixel-sampled model) rendered through psfsize_kernels has the model's own NEA within 1%; the
    files' ``psf_fwhm`` column is PSFEx's estimate, 2-9% below it, not the psfsize convention."""
    files = sorted((shared_data / "decam_psfex_ls9").glob("*psfex.fits"))
    assert len(files) == 14
    for path in files:
        model = PSFExModel.from_fits(str(path))
        real = model.at(model.zero[0], model.zero[1], size=63).astype(np.float64)
        psfsize = nea_fwhm(real) * PIXEL_SCALE
        assert 0.85 < psfsize < 1.9
        ours = psfsize_kernels([psfsize], size=63)[0]
        nea_real, nea_ours = 1 / (real**2).sum(), 1 / (ours.astype(np.float64) ** 2).sum()
        assert abs(nea_ours / nea_real - 1) < 0.01, path.name
        assert 0.90 < model.fwhm_pix * PIXEL_SCALE / psfsize < 0.99, path.name


def test_convolution_does_not_shift_a_point_source():
    """The earlier pipeline's FFT PSF-centring bug shifted PSFs by -23 px."""
    img = np.zeros((64, 64), np.float32)
    img[31, 40] = 1.0
    out = convolve_same(img, moffat_kernel(5.0, size=33))
    assert np.allclose(kernel_centroid(out), (31, 40), atol=0.05)
    assert abs(out.sum() - 1) < 0.02


def test_psfex_real_models(shared_data):
    files = sorted((shared_data / "decam_psfex_ls9").glob("*psfex.fits"))
    assert len(files) == 14
    for path in files:
        model = PSFExModel.from_fits(str(path))
        k = model.at(1000.0, 2000.0, size=33)
        assert k.shape == (33, 33) and abs(k.sum() - 1) < 1e-5 and np.all(k >= 0)
        row, col = kernel_centroid(k)
        assert abs(row - 16) < 0.6 and abs(col - 16) < 0.6
        # the model's psf_fwhm header (pixels) is the noise-equivalent width, not the half-max width
        wide = model.at(model.zero[0], model.zero[1], size=63)  # the header describes the model centre
        assert abs(nea_fwhm(wide) - model.fwhm_pix) / model.fwhm_pix < 0.10
        assert measured_fwhm(wide) < 0.95 * model.fwhm_pix
    # the PSF varies across the CCD
    model = PSFExModel.from_fits(str(files[0]))
    assert not np.allclose(model.at(0, 0), model.at(2000, 4000))


def test_psfex_bad_file_is_clear(tmp_path):
    path = tmp_path / "bad.fits"
    path.write_bytes(b"not fits at all")
    with pytest.raises(PSFError, match="not a readable PSFEx"):
        PSFExModel.from_fits(str(path))


def test_public_renderer_takes_the_survey_psfsize():
    """render_lensed_sersic(..., psf_fwhm=psfsize) renders a point-like source with NEA-FWHM =
    psfsize (within 5%: the source is integrated over the pixel, 2-4% wider); the old half-maximum
    convention gave 1.23x, an injected point source ~1.5x fainter at peak."""
    from dhs_gen.lensing import psf_kernels, render_lensed_sersic

    psfsize = np.array([[0.9, 1.3, 1.8]])
    kernels = psf_kernels(psfsize, stamp_size=64)
    np.testing.assert_allclose([nea_fwhm(k) * PIXEL_SCALE for k in kernels[0]], psfsize[0], rtol=0.01)
    lens = {"theta_E": [0.01], "e1": [0.0], "e2": [0.0], "center_x": [0.0], "center_y": [0.0],
            "gamma1": [0.0], "gamma2": [0.0]}
    source = {"R_sersic": [0.02], "n_sersic": [1.0], "e1": [0.0], "e2": [0.0], "center_x": [1.0],
              "center_y": [0.0], "flux_g": [1.0], "flux_r": [1.0], "flux_z": [1.0]}
    image = render_lensed_sersic(lens, source, psfsize, stamp_size=64)[0]
    np.testing.assert_allclose([nea_fwhm(band) * PIXEL_SCALE for band in image], psfsize[0], rtol=0.05)


@pytest.mark.parametrize("beta", [3.5, 3.0, 2.5])
def test_half_integer_moffat_kernels_equal_the_power_law(beta):
    """The compiled half-integer-beta path equals (1 + r^2 / alpha^2)^-beta at pixel centres,
    normalised to unit sum (float64 reference), for several widths at once."""
    fwhm = np.array([1.3, 2.7, 4.1])
    got = moffat_kernels(fwhm, beta=beta, size=15)
    alpha = fwhm / (2.0 * np.sqrt(2.0 ** (1.0 / beta) - 1.0))
    yy, xx = np.mgrid[-7:8, -7:8]
    ref = (1.0 + (xx**2 + yy**2)[None] / alpha[:, None, None] ** 2) ** -beta
    ref /= ref.sum(axis=(1, 2), keepdims=True)
    assert got.dtype == np.float32 and got.shape == (3, 15, 15)
    assert np.allclose(got, ref, rtol=2e-6, atol=0)
