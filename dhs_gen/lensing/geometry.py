"""lenstronomy's ellipticity and Sérsic conventions and the PSF kernel size, shared by both backends.

Pixel (row, col) of an H x W stamp is centred at x = (col - (W-1)/2) * pixel_scale,
y = (row - (H-1)/2) * pixel_scale [arcsec]. A supersampled grid splits each pixel into
s x s equal sub-pixels whose centres are offset by ((k + 0.5)/s - 0.5) * pixel_scale
(:func:`dhs_gen.lensing.fast.subpixel_grid`, :func:`dhs_gen.lensing.fast.subpixel_offsets`).
"""
from __future__ import annotations

import numpy as np

NIE_CORE_ARCSEC = 1e-10  # lenstronomy's SIE = NIE with this core (s_scale), avoids 0/0 at the centre


def ellipticity_to_phi_q(e1, e2):
    """lenstronomy ellipticity2phi_q: phi = atan2(e2, e1)/2 [rad], q = (1-|e|)/(1+|e|)."""
    e1 = np.asarray(e1, dtype=np.float64)
    e2 = np.asarray(e2, dtype=np.float64)
    c = np.minimum(np.hypot(e1, e2), 0.9999)
    return np.arctan2(e2, e1) / 2.0, (1.0 - c) / (1.0 + c)


def sersic_b_n(n):
    """lenstronomy's b_n approximation: max(1.9992 n - 0.3271, 1e-5)."""
    return np.maximum(1.9992 * np.asarray(n, dtype=np.float64) - 0.3271, 1e-5)


def sersic_total_flux_per_amp(r_sersic, n_sersic):
    """Total flux of a lenstronomy SERSIC_ELLIPSE profile with amp = 1 [arcsec^2 x amp units].

    F = 2 pi n R^2 e^{b_n} b_n^{-2n} Gamma(2n) (R = product-average half-light radius; the
    e1/e2 coordinate map is area preserving, so ellipticity does not change F).
    """
    from scipy.special import gammaln

    r = np.asarray(r_sersic, dtype=np.float64)
    n = np.asarray(n_sersic, dtype=np.float64)
    bn = sersic_b_n(n)
    return 2.0 * np.pi * n * r**2 * np.exp(bn - 2.0 * n * np.log(bn) + gammaln(2.0 * n))


def sersic_amp_from_flux(flux, r_sersic, n_sersic):
    """lenstronomy SERSIC_ELLIPSE ``amp`` (surface brightness at R_sersic, flux/arcsec^2) for a
    total flux ``flux`` (any flux unit, e.g. nanomaggies)."""
    return np.asarray(flux, dtype=np.float64) / sersic_total_flux_per_amp(r_sersic, n_sersic)


def psf_kernel_size(stamp_size: int, preferred: int = 33) -> int:
    """Odd PSF kernel size [pixels]: ``preferred``, never larger than the stamp."""
    size = min(int(preferred), int(stamp_size))
    return size if size % 2 else size - 1
