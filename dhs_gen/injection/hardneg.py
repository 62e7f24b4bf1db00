"""Hard negatives: the θ_E-aware azimuthal shuffle of the injected light (LEGACY_FORMATS.md).

Δ = positive − control; the annulus [max(2, θ_pix − 1.5·FWHM_pix), θ_pix + 1.5·FWHM_pix) [pixels]
about the lens centre; if it holds more than 16 pixels its pixels are permuted (one permutation
shared by all bands), which keeps the annulus flux and radial range but destroys arc coherence.
Hard negative = control + shuffled Δ.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

MIN_ANNULUS_PIXELS = 16


def annulus_mask(size: int, theta_pix: float, fwhm_pix: float, center=(0.0, 0.0)) -> np.ndarray:
    """(size, size) bool annulus; ``center`` = (x, y) offset [pixels] from the stamp centre."""
    mask = np.zeros(size * size, dtype=bool)
    mask[annulus_index(size, theta_pix, fwhm_pix, center)] = True
    return mask.reshape(size, size)


def annulus_index(size: int, theta_pix: float, fwhm_pix: float, center=(0.0, 0.0)) -> np.ndarray:
    """Flat (row-major, ascending) indices of the :func:`annulus_mask` pixels.

    Radii are evaluated only in the square about the centre that can hold the annulus: a pixel
    whose row or column is ``r_out`` or more from the centre has radius ≥ r_out.
    """
    r_in, r_out = max(2.0, theta_pix - 1.5 * fwhm_pix), theta_pix + 1.5 * fwhm_pix
    axis, flat = _grid(size)
    half = (size - 1) / 2.0
    rows, cols = _span(center[1] + half, r_out, size), _span(center[0] + half, r_out, size)
    r = np.hypot(axis[None, cols] - center[0], axis[rows, None] - center[1])
    return flat[rows, cols][(r >= r_in) & (r < r_out)]


@lru_cache(maxsize=8)
def _grid(size: int):
    """(pixel offsets from the stamp centre (size,) [pixels], flat pixel indices (size, size)), read-only."""
    axis, flat = np.arange(size) - (size - 1) / 2.0, np.arange(size * size).reshape(size, size)
    axis.flags.writeable = flat.flags.writeable = False
    return axis, flat


def _span(centre: float, reach: float, size: int) -> slice:
    """Slice of 0..size−1 holding every index closer than ``reach`` to ``centre`` [pixels] (one
    pixel of margin each side; all of them when either is not finite)."""
    if not (math.isfinite(centre) and math.isfinite(reach)):
        return slice(0, size)
    lo = min(max(math.floor(centre - reach) - 1, 0), size)
    return slice(lo, min(max(math.ceil(centre + reach) + 2, lo), size))


def shuffle_delta(delta: np.ndarray, theta_pix: float, fwhm_pix: float, rng: np.random.Generator,
                  center=(0.0, 0.0)) -> np.ndarray:
    """Δ (C, H, W) with its annulus pixels permuted (same permutation in every band)."""
    index = annulus_index(delta.shape[-1], theta_pix, fwhm_pix, center)
    out = delta.copy()
    if index.size > MIN_ANNULUS_PIXELS:
        flat = out.reshape(out.shape[0], -1)
        flat[:, index] = flat[:, index[rng.permutation(index.size)]]
    return out
