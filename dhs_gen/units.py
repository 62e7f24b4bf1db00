"""Photometric and PSF unit conversions (nanomaggies, AB magnitudes, depths, FWHM).

All functions are vectorised over numpy arrays.
"""
from __future__ import annotations

import numpy as np

from dhs_gen import AB_ZEROPOINT

FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))  # Gaussian FWHM / sigma = 2.3548


def mag_to_nmgy(mag):
    """AB magnitude -> flux in nanomaggies (zero point 22.5)."""
    return 10.0 ** ((AB_ZEROPOINT - np.asarray(mag, dtype=np.float64)) / 2.5)


def nmgy_to_mag(flux):
    """Flux in nanomaggies -> AB magnitude; NaN for flux <= 0."""
    flux = np.asarray(flux, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(flux > 0, AB_ZEROPOINT - 2.5 * np.log10(np.where(flux > 0, flux, 1.0)), np.nan)


def psfdepth_ivar_to_mag5(ivar):
    """Tractor/sweep `psfdepth` inverse variance [nmgy^-2] -> 5-sigma AB point-source depth [mag].

    m5 = 22.5 - 2.5 log10(5 / sqrt(ivar)); NaN where ivar <= 0 (no coverage).
    """
    ivar = np.asarray(ivar, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        sigma = np.where(ivar > 0, 1.0 / np.sqrt(np.where(ivar > 0, ivar, 1.0)), np.nan)
    return nmgy_to_mag(5.0 * sigma)


def mag5_to_psfdepth_ivar(mag5):
    """5-sigma AB point-source depth [mag] -> inverse variance of the PSF flux [nmgy^-2]."""
    sigma_flux = mag_to_nmgy(mag5) / 5.0
    return 1.0 / sigma_flux**2


def point_source_sigma_nmgy(mag5):
    """1-sigma PSF-flux uncertainty [nmgy] of a 5-sigma depth m5: 10^((22.5 - m5)/2.5) / 5."""
    return mag_to_nmgy(mag5) / 5.0


def pixel_sigma_from_depth(mag5, psf_fwhm_arcsec, pixel_scale=0.262):
    """Per-pixel white-noise sigma [nmgy/px] that gives a 5-sigma PSF depth m5.

    For white noise sigma_pix the optimal (PSF-weighted) flux estimate has variance
    sigma_pix^2 * NEA (the PSF's noise-equivalent area); ``psf_fwhm_arcsec`` is the survey's
    psfsize, the FWHM of the Gaussian with that NEA (4 pi sigma_psf^2), exact for any PSF shape
    (:mod:`dhs_gen.psf`). Hence sigma_pix = sigma_flux / (sqrt(4 pi) sigma_psf_pix).
    """
    sigma_psf_pix = np.asarray(psf_fwhm_arcsec, dtype=np.float64) / FWHM_PER_SIGMA / pixel_scale
    return point_source_sigma_nmgy(mag5) / (np.sqrt(4.0 * np.pi) * sigma_psf_pix)
