"""Validation of the batch inputs of the lensing renderer (lens, source and PSF dicts of arrays).

Every check names the offending key and batch row, so a bad manifest row is easy to find.
"""
from __future__ import annotations

from typing import Dict, Iterable

import numpy as np

LENS_KEYS = ("theta_E", "e1", "e2", "center_x", "center_y", "gamma1", "gamma2")
LENS_EXTRA_KEYS = ("gamma", "a3", "phi3", "a4", "phi4")
SERSIC_KEYS = ("R_sersic", "n_sersic", "e1", "e2", "center_x", "center_y")
FLUX_KEYS = ("flux_g", "flux_r", "flux_z")
MAX_ELLIPTICITY = 0.9  # |e| < 0.9  <=>  axis ratio q > 0.053
SERSIC_N_RANGE = (0.2, 8.0)


class LensingInputError(ValueError):
    """An invalid lens, source or PSF parameter (the message names the key and the row)."""


def _first_bad(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def as_batch(params: Dict[str, object], keys: Iterable[str], what: str, optional: Iterable[str] = (),
             size: int | None = None) -> Dict[str, np.ndarray]:
    """Dict of equal-length finite float64 (B,) arrays for ``keys`` (+ any ``optional`` present).

    Raises LensingInputError for a missing or unknown key, a length mismatch or a non-finite value.
    """
    if not isinstance(params, dict):
        raise LensingInputError(f"{what} must be a dict of (B,) arrays, got {type(params).__name__}")
    keys, optional = tuple(keys), tuple(optional)
    missing = [k for k in keys if k not in params]
    if missing:
        raise LensingInputError(f"{what} lacks key(s) {missing}; needs {list(keys)}")
    unknown = sorted(set(params) - set(keys) - set(optional))
    if unknown:
        raise LensingInputError(f"{what} has unknown key(s) {unknown}; allowed {list(keys + optional)}")
    out = {}
    for key in keys + tuple(k for k in optional if k in params):
        arr = np.atleast_1d(np.asarray(params[key], dtype=np.float64))
        if arr.ndim != 1:
            raise LensingInputError(f"{what}[{key!r}] must be 1-D (B,), got shape {arr.shape}")
        if size is None:
            size = len(arr)
        if len(arr) != size:
            raise LensingInputError(f"{what}[{key!r}] has {len(arr)} rows, expected {size}")
        bad = ~np.isfinite(arr)
        if bad.any():
            i = _first_bad(bad)
            raise LensingInputError(f"{what}[{key!r}] row {i} is not finite ({arr[i]})")
        out[key] = arr
    return out


def _require(mask: np.ndarray, values: np.ndarray, message: str) -> None:
    if mask.any():
        i = _first_bad(mask)
        raise LensingInputError(f"{message}: row {i} has {values[i]!r}")


def _check_ellipticity(p: Dict[str, np.ndarray], what: str) -> None:
    e = np.hypot(p["e1"], p["e2"])
    _require(e >= MAX_ELLIPTICITY, e, f"{what} ellipticity |e1 + i e2| must be < {MAX_ELLIPTICITY}")


def validate_lens(lens: Dict[str, object], size: int | None = None) -> Dict[str, np.ndarray]:
    """SIE + shear lens parameters [arcsec]; optional EPL slope ``gamma`` and circular multipoles
    ``a3, phi3, a4, phi4``: amplitudes a_m in **arcsec** (lenstronomy MULTIPOLE, see
    :func:`multipoles_from_fractions`), orientations phi_m [rad]."""
    p = as_batch(lens, LENS_KEYS, "lens", optional=LENS_EXTRA_KEYS, size=size)
    _require(p["theta_E"] <= 0, p["theta_E"], "lens theta_E [arcsec] must be > 0")
    _check_ellipticity(p, "lens")
    shear = np.hypot(p["gamma1"], p["gamma2"])
    _require(shear >= 0.5, shear, "lens external shear |gamma1 + i gamma2| must be < 0.5")
    if "gamma" in p:
        _require((p["gamma"] <= 1.2) | (p["gamma"] >= 2.8), p["gamma"], "lens EPL slope gamma must be in (1.2, 2.8)")
    for m in ("3", "4"):
        if (f"a{m}" in p) != (f"phi{m}" in p):
            raise LensingInputError(f"lens multipole m={m} needs both a{m} and phi{m}")
    return p


def multipoles_from_fractions(theta_E, a3_frac=None, phi3=None, a4_frac=None, phi4=None) -> Dict[str, np.ndarray]:
    """Lens keys ``a3, phi3, a4, phi4`` from multipole amplitudes relative to θ_E.

    lenstronomy's circular MULTIPOLE has potential ψ_m = r a_m / (1 − m²) cos(m (φ − φ_m)), so
    a_m is in arcsec (ψ in arcsec²) and its convergence is κ_m = a_m / (2 r) cos(m (φ − φ_m)). An
    SIE has κ = θ_E / (2 r), so a_m / θ_E is the fractional perturbation of the convergence, the
    same at every radius: the scale-free amplitude to draw (observed galaxies: |a_4| / θ_E of
    order 0.01, a few % at most). ``theta_E`` (B,) [arcsec]; ``a{m}_frac`` (B,) = a_m / θ_E
    [dimensionless]; ``phi{m}`` (B,) [rad]; an order is returned only when its fraction is given.
    Returns a_m = a{m}_frac x θ_E [arcsec] and phi_m as float64 (B,) arrays.
    """
    theta = np.atleast_1d(np.asarray(theta_E, dtype=np.float64))
    out: Dict[str, np.ndarray] = {}
    for m, frac, phi in (("3", a3_frac, phi3), ("4", a4_frac, phi4)):
        if frac is None:
            continue
        if phi is None:
            raise LensingInputError(f"multipole m={m}: a{m}_frac needs phi{m}")
        out[f"a{m}"] = np.asarray(frac, dtype=np.float64) * theta
        out[f"phi{m}"] = np.broadcast_to(np.asarray(phi, dtype=np.float64), theta.shape).copy()
    return out


def validate_sersic(source: Dict[str, object], size: int | None = None,
                    fluxes: bool = True) -> Dict[str, np.ndarray]:
    """Elliptical Sérsic source: R_sersic [arcsec, product-average half-light radius], n_sersic,
    e1, e2, centre [arcsec, source plane] and (if ``fluxes``) flux_g/r/z [nanomaggies, >= 0]."""
    keys = SERSIC_KEYS + (FLUX_KEYS if fluxes else ())
    p = as_batch(source, keys, "source", size=size)
    _require(p["R_sersic"] <= 0, p["R_sersic"], "source R_sersic [arcsec] must be > 0")
    lo, hi = SERSIC_N_RANGE
    _require((p["n_sersic"] < lo) | (p["n_sersic"] > hi), p["n_sersic"], f"source n_sersic must be in [{lo}, {hi}]")
    _check_ellipticity(p, "source")
    for key in FLUX_KEYS if fluxes else ():
        _require(p[key] < 0, p[key], f"source {key} [nanomaggies] must be >= 0")
    return p


def validate_psf_fwhm(psf_fwhm, size: int) -> np.ndarray:
    """(B, 3) Moffat FWHM [arcsec] per g, r, z band, finite and > 0."""
    arr = np.asarray(psf_fwhm, dtype=np.float64)
    if arr.shape != (size, 3):
        raise LensingInputError(f"psf_fwhm must have shape (B, 3) = ({size}, 3) [arcsec, g r z], got {arr.shape}")
    bad = ~np.isfinite(arr) | (arr <= 0)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise LensingInputError(f"psf_fwhm row {i} band {'grz'[j]} must be finite and > 0 arcsec, got {arr[i, j]}")
    return arr


def validate_grid(stamp_size: int, pixel_scale: float, supersampling: int) -> None:
    """Stamp size [pixels] >= 3, pixel scale [arcsec/pixel] > 0, integer supersampling >= 1."""
    if int(stamp_size) != stamp_size or stamp_size < 3:
        raise LensingInputError(f"stamp_size must be an integer >= 3 pixels, got {stamp_size}")
    if not np.isfinite(pixel_scale) or pixel_scale <= 0:
        raise LensingInputError(f"pixel_scale must be > 0 arcsec/pixel, got {pixel_scale}")
    if int(supersampling) != supersampling or supersampling < 1:
        raise LensingInputError(f"supersampling must be an integer >= 1, got {supersampling}")


def output_images(out: np.ndarray | None, n: int, stamp_size: int) -> np.ndarray:
    """The (n, 3, stamp_size, stamp_size) float32 array a renderer writes into: ``out`` when given
    (it must be exactly that: float32, C-contiguous, writable), else a new one."""
    shape = (n, 3, stamp_size, stamp_size)
    if out is None:
        return np.empty(shape, dtype=np.float32)
    if out.shape != shape or out.dtype != np.float32 or not out.flags.c_contiguous or not out.flags.writeable:
        raise LensingInputError(f"out must be a writable C-contiguous float32 array of shape {shape}, "
                                f"got {out.dtype} {out.shape}")
    return out


def check_finite_output(images: np.ndarray, what: str = "rendered stamp") -> np.ndarray:
    """Raise LensingInputError naming the first row with a NaN/Inf pixel; return ``images``."""
    flat = images.reshape(images.shape[0], int(np.prod(images.shape[1:])))
    bad = ~np.isfinite(flat).all(axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise LensingInputError(f"{what}: non-finite pixels in row(s) {rows[:10].tolist()} of {len(images)}")
    return images
