"""PSF kernels: odd, centred, normalised, right FWHM; PSFEx models read at a position; no shifts."""
from __future__ import annotations

import numpy as np
import pytest

from dhs_gen.psf import (
    PSFError,
    PSFExModel,
    convolve_same,
    kernel_centroid,
    moffat_kernel,
    moffat_kernels,
    nea_fwhm,
)


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
