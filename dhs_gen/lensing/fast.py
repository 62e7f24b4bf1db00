"""The fast backend: vectorised float32 numpy ray tracing and Sérsic evaluation for a batch.

Conventions follow lenstronomy exactly (SIE = NIE with a 1e-10" core, e1/e2 ellipticities,
product-average radii, SHEAR about the origin, circular MULTIPOLE m = 3, 4), so the fast engine
and the lenstronomy reference agree to float32 rounding. Per-row scalars are computed in
float64; per-sub-pixel maths runs in float32 on (rows, sub-pixels) arrays.
"""
from __future__ import annotations

from typing import Dict

import numpy as np

from dhs_gen.lensing.geometry import NIE_CORE_ARCSEC, ellipticity_to_phi_q, sersic_b_n
from dhs_gen.lensing.params import LensingInputError

F32 = np.float32
Q_MAX = 1.0 - 1e-6  # an exactly round SIE is evaluated as q = 1 - 1e-6 (lenstronomy: 1 - 1e-8)


def _col(v: np.ndarray) -> np.ndarray:
    return np.asarray(v, dtype=np.float64)[:, None].astype(F32)


def sie_shear_deflection(lens: Dict[str, np.ndarray], x: np.ndarray, y: np.ndarray):
    """Deflection (alpha_x, alpha_y) [arcsec], each (B, N) float32, of SIE + external shear
    (+ optional circular m=3/m=4 multipoles) at image-plane points x, y (N,) [arcsec]."""
    if "gamma" in lens:
        raise LensingInputError("the fast backend has no EPL slope; use backend='lenstronomy' for lens 'gamma'")
    phi, q = ellipticity_to_phi_q(lens["e1"], lens["e2"])
    q = np.minimum(q, Q_MAX)
    b = lens["theta_E"] * np.sqrt(q)  # lenstronomy: major-axis b = theta_E sqrt(q) for the product average
    e = np.sqrt(1.0 - q**2)
    s = NIE_CORE_ARCSEC / np.sqrt(q)
    cos, sin = _col(np.cos(phi)), _col(np.sin(phi))
    dx = x[None, :].astype(F32) - _col(lens["center_x"])
    dy = y[None, :].astype(F32) - _col(lens["center_y"])
    xr = dx * cos + dy * sin  # major-axis frame
    yr = dy * cos - dx * sin
    q2 = _col(q**2)
    psi = np.sqrt(q2 * xr * xr + yr * yr + _col(q**2 * s**2))
    ec = _col(e)
    amp = _col(b / e)
    ax_r = np.arctan(ec * xr / (psi + _col(s)))
    ax_r *= amp
    ay_r = np.arctanh(ec * yr / (psi + _col(q**2 * s)))
    ay_r *= amp
    ax = ax_r * cos - ay_r * sin
    ay = ax_r * sin + ay_r * cos
    g1, g2 = _col(lens["gamma1"]), _col(lens["gamma2"])
    xs, ys = x[None, :].astype(F32), y[None, :].astype(F32)
    ax += g1 * xs + g2 * ys
    ay += g2 * xs - g1 * ys
    for m in (3, 4):
        if f"a{m}" in lens:
            mx, my = _multipole_deflection(m, lens[f"a{m}"], lens[f"phi{m}"], dx, dy)
            ax += mx
            ay += my
    return ax, ay


def _multipole_deflection(m: int, a_m: np.ndarray, phi_m: np.ndarray, dx: np.ndarray, dy: np.ndarray):
    """lenstronomy MULTIPOLE (circular, m >= 2) deflection about the lens centre [arcsec]."""
    phi = np.arctan2(dy, dx)
    arg = F32(m) * (phi - _col(phi_m))
    c_m, s_m = np.cos(arg), np.sin(arg)
    k = _col(np.asarray(a_m, dtype=np.float64) / (1.0 - m**2))
    cp, sp = np.cos(phi), np.sin(phi)
    return k * (cp * c_m + F32(m) * sp * s_m), k * (sp * c_m - F32(m) * cp * s_m)


def ray_trace(lens: Dict[str, np.ndarray], x: np.ndarray, y: np.ndarray):
    """Source-plane positions beta = theta - alpha(theta) [arcsec], each (B, N) float32."""
    ax, ay = sie_shear_deflection(lens, x, y)
    np.subtract(x[None, :].astype(F32), ax, out=ax)
    np.subtract(y[None, :].astype(F32), ay, out=ay)
    return ax, ay


def sersic_profile(bx: np.ndarray, by: np.ndarray, source: Dict[str, np.ndarray]) -> np.ndarray:
    """lenstronomy SERSIC_ELLIPSE with amp = 1 at source-plane points (B, N): float32 (B, N).

    I = exp(-b_n ((R/R_sersic)^(1/n) - 1)), R from the area-preserving e1/e2 map, floored at
    1e-4" like lenstronomy.
    """
    e1, e2 = source["e1"], source["e2"]
    norm = np.sqrt(np.maximum(np.abs(1.0 - e1**2 - e2**2), 1e-6))
    inv_r2 = 1.0 / np.maximum(source["R_sersic"], 1e-4) ** 2
    dx = bx - _col(source["center_x"])
    dy = by - _col(source["center_y"])
    u = dx * _col((1.0 - e1) / norm) - dy * _col(e2 / norm)
    v = dy * _col((1.0 + e1) / norm) - dx * _col(e2 / norm)
    r2 = u * u
    r2 += v * v
    np.maximum(r2, F32(1e-8), out=r2)
    r2 *= _col(inv_r2)
    # (R/R_s)^(1/n) = exp(log(r2) / (2n))
    np.log(r2, out=r2)
    r2 *= _col(0.5 / source["n_sersic"])
    np.exp(r2, out=r2)
    bn = sersic_b_n(source["n_sersic"])
    r2 *= _col(-bn)
    r2 += _col(bn)
    return np.exp(r2, out=r2)


def bin_pixels(sub: np.ndarray, stamp_size: int, supersampling: int) -> np.ndarray:
    """Mean over s x s sub-pixels: (B, (H s)^2) -> (B, H, W) float32."""
    s = int(supersampling)
    h = int(stamp_size)
    if s == 1:
        return sub.reshape(-1, h, h)
    return sub.reshape(-1, h, s, h, s).mean(axis=(2, 4), dtype=F32)


def convolve_bands(pixels: np.ndarray, kernels: np.ndarray) -> np.ndarray:
    """Centred 'same' convolution of (B, H, W) images with per-band kernels (B, C, K, K), odd K:
    returns (B, C, H, W) float32. Batched real FFT with zero padding to H + K - 1."""
    from scipy import fft

    b, h, w = pixels.shape
    k = kernels.shape[-1]
    shape = (fft.next_fast_len(h + k - 1, real=True), fft.next_fast_len(w + k - 1, real=True))
    f_img = fft.rfft2(pixels, s=shape, axes=(-2, -1))
    f_ker = fft.rfft2(kernels, s=shape, axes=(-2, -1))
    out = fft.irfft2(f_img[:, None] * f_ker, s=shape, axes=(-2, -1))
    c = k // 2
    return np.ascontiguousarray(out[..., c:c + h, c:c + w], dtype=F32)
