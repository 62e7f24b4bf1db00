"""Inverse-CDF transforms of uniforms into the source priors (positions, shapes, colours).

The project's one source-colour prior lives here (used by the ``sersic`` generator and the
phase-4a manifest alike): the colours of the faint COSMOS galaxies that make up the real
lensed-source population (HSC photometry of the packaged 26-mag RealGalaxy sample: g-r median
0.35, r-z median 0.44), g-r ~ N(0.35, 0.25) and r-z ~ N(0.45, 0.30) [mag], each truncated to
``COLOUR_LIMITS``: blue, star-forming sources at z ~ 1-3.
"""
from __future__ import annotations

import numpy as np

from dhs_gen.sources.registry import SourceError

SOURCE_G_MINUS_R = (0.35, 0.25)  # (mean, sigma) [mag]
SOURCE_R_MINUS_Z = (0.45, 0.30)  # (mean, sigma) [mag]
COLOUR_LIMITS = (-0.5, 2.0)  # truncation of both colours [mag]


def uniform(u, low: float, high: float) -> np.ndarray:
    """U(low, high) from u in [0, 1)."""
    return low + (high - low) * np.asarray(u, dtype=np.float64)


def clipped_normal(u, mean: float, std: float, low: float, high: float) -> np.ndarray:
    """N(mean, std) truncated to [low, high] by inverse CDF (no rejection loop)."""
    from scipy.special import ndtr, ndtri

    a, b = ndtr((low - mean) / std), ndtr((high - mean) / std)
    return mean + std * ndtri(a + (b - a) * np.clip(np.asarray(u, dtype=np.float64), 1e-12, 1 - 1e-12))


def source_colours(u_g_r, u_r_z, g_r=SOURCE_G_MINUS_R, r_z=SOURCE_R_MINUS_Z) -> tuple[np.ndarray, np.ndarray]:
    """(g-r, r-z) [mag] from two uniforms: normal (mean, sigma) truncated to ``COLOUR_LIMITS``."""
    return clipped_normal(u_g_r, *g_r, *COLOUR_LIMITS), clipped_normal(u_r_z, *r_z, *COLOUR_LIMITS)


def ellipticity_from_q_phi(q, phi):
    """lenstronomy (e1, e2) from axis ratio q and position angle phi [rad]."""
    e = (1.0 - q) / (1.0 + q)
    return e * np.cos(2.0 * phi), e * np.sin(2.0 * phi)


def source_positions(u_radius, u_angle, theta_E, beta_frac=(0.1, 0.4), center_x=0.0, center_y=0.0):
    """Source-plane centres [arcsec]: beta/theta_E area-weighted (uniform in beta^2) in ``beta_frac``,
    uniform angle, about the lens centre (center_x, center_y). ``theta_E`` None puts sources at the
    lens centre (callers then set positions themselves)."""
    n = len(u_radius)
    cx = np.broadcast_to(np.asarray(center_x, dtype=np.float64), (n,))
    cy = np.broadcast_to(np.asarray(center_y, dtype=np.float64), (n,))
    if theta_E is None:
        return cx.copy(), cy.copy()
    theta_E = np.broadcast_to(np.asarray(theta_E, dtype=np.float64), (n,))
    if not np.all(np.isfinite(theta_E) & (theta_E > 0)):
        raise SourceError("theta_E [arcsec] must be finite and > 0 to place sources")
    lo, hi = beta_frac
    beta = theta_E * np.sqrt(lo**2 + (hi**2 - lo**2) * np.asarray(u_radius, dtype=np.float64))
    ang = 2.0 * np.pi * np.asarray(u_angle, dtype=np.float64)
    return cx + beta * np.cos(ang), cy + beta * np.sin(ang)


def check_finite_batch(batch: dict, name: str) -> dict:
    """Raise SourceError naming the first row with a non-finite parameter or template pixel."""
    for key, value in batch.items():
        if key == "kind":
            continue
        arr = np.asarray(value)
        flat = arr.reshape(arr.shape[0], int(np.prod(arr.shape[1:]))) if arr.ndim > 1 else arr[:, None]
        bad = ~np.isfinite(flat).all(axis=1)
        if bad.any():
            raise SourceError(f"source generator {name!r}: non-finite {key} in row {int(np.flatnonzero(bad)[0])}")
    return batch
