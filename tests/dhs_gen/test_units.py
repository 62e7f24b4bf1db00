"""Unit conversions, including the psfdepth (ivar vs 5-sigma magnitude) trap."""
from __future__ import annotations

import numpy as np

from dhs_gen import units


def test_mag_flux_round_trip_and_zero_point():
    assert units.mag_to_nmgy(22.5) == 1.0
    np.testing.assert_allclose(units.nmgy_to_mag(units.mag_to_nmgy([18.0, 24.3])), [18.0, 24.3])
    assert np.isnan(units.nmgy_to_mag(-1.0))


def test_depth_ivar_mag5_round_trip():
    mag5 = np.array([23.4, 24.5, 25.0])
    ivar = units.mag5_to_psfdepth_ivar(mag5)
    np.testing.assert_allclose(units.psfdepth_ivar_to_mag5(ivar), mag5)
    # m5 = 22.5 - 2.5 log10(5 / sqrt(ivar)) by definition
    np.testing.assert_allclose(units.psfdepth_ivar_to_mag5(400.0), 22.5 - 2.5 * np.log10(5 / 20.0))
    assert np.isnan(units.psfdepth_ivar_to_mag5(0.0))


def test_pixel_sigma_from_depth_gaussian_nea():
    # sigma_flux^2 = sigma_pix^2 * 4 pi sigma_psf^2 for a Gaussian PSF
    sig_pix = units.pixel_sigma_from_depth(24.0, 1.3)
    sigma_psf = 1.3 / units.FWHM_PER_SIGMA / 0.262
    np.testing.assert_allclose(sig_pix**2 * 4 * np.pi * sigma_psf**2, units.point_source_sigma_nmgy(24.0) ** 2)
