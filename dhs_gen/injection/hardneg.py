"""Hard negatives: the θ_E-aware azimuthal shuffle of the injected light (LEGACY_FORMATS.md).

Δ = positive − control; the annulus [max(2, θ_pix − 1.5·FWHM_pix), θ_pix + 1.5·FWHM_pix) [pixels]
about the lens centre; if it holds more than 16 pixels its pixels are permuted (one permutation
shared by all bands), which keeps the annulus flux and radial range but destroys arc coherence.
Hard negative = control + shuffled Δ.
"""
from __future__ import annotations

import numpy as np

MIN_ANNULUS_PIXELS = 16


def annulus_mask(size: int, theta_pix: float, fwhm_pix: float, center=(0.0, 0.0)) -> np.ndarray:
    """(size, size) bool annulus; ``center`` = (x, y) offset [pixels] from the stamp centre."""
    axis = np.arange(size) - (size - 1) / 2.0
    r = np.hypot(axis[None, :] - center[0], axis[:, None] - center[1])
    r_in = max(2.0, theta_pix - 1.5 * fwhm_pix)
    return (r >= r_in) & (r < theta_pix + 1.5 * fwhm_pix)


def shuffle_delta(delta: np.ndarray, theta_pix: float, fwhm_pix: float, rng: np.random.Generator,
                  center=(0.0, 0.0)) -> np.ndarray:
    """Δ (C, H, W) with its annulus pixels permuted (same permutation in every band)."""
    mask = annulus_mask(delta.shape[-1], theta_pix, fwhm_pix, center)
    index = np.flatnonzero(mask)
    out = delta.copy()
    if index.size > MIN_ANNULUS_PIXELS:
        flat = out.reshape(out.shape[0], -1)
        flat[:, index] = flat[:, index[rng.permutation(index.size)]]
    return out
