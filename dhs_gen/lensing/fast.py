"""The fast backend's numpy side: the general ray tracing and Sérsic evaluation, grids, the
batched FFT convolution and the supersampling cut.

:func:`ray_trace` and :func:`sersic_profile` are vectorised float32 numpy for any lens of the
project (SIE or EPL + shear, circular MULTIPOLE m = 3, 4): the EPL / multipole batches and
image sources use them. SIE + shear Sérsic batches are rendered by the compiled kernel
:func:`dhs_gen.lensing.kernels.render_sie_sersic` instead (same conventions, tested against
the same lenstronomy reference). Conventions follow lenstronomy exactly (SIE = NIE with a
1e-10" core, e1/e2 ellipticities, product-average radii, SHEAR about the origin), so the fast
engine and the lenstronomy reference agree to float32 rounding. Per-row scalars are computed in
float64; per-sub-pixel maths runs in float32.
"""
from __future__ import annotations

import threading
from functools import lru_cache
from typing import Dict

import numpy as np

from dhs_gen.lensing.geometry import NIE_CORE_ARCSEC, ellipticity_to_phi_q, sersic_b_n
from dhs_gen.lensing.kernels import (
    EXP2_FLOOR,
    Q_MAX,
    dilate_or_near,
    even_spectrum_product,
    is_point_symmetric,
)

F32 = np.float32


def _col(v: np.ndarray) -> np.ndarray:
    """(B,) per-row values as a float32 column (B, 1)."""
    return np.asarray(v, dtype=np.float64)[:, None].astype(F32)


def _last(v: np.ndarray) -> np.ndarray:
    """(M,) per-point-group values as float32 (M,), broadcasting along the last axis."""
    return np.asarray(v, dtype=np.float64).astype(F32)


def _points(x: np.ndarray, y: np.ndarray):
    """(xs, ys, col): flat (N,) points shared by all B rows -> (1, N) with (B, 1) row columns;
    otherwise arrays whose last axis is the row (e.g. per-pixel x0 (M,) plus sub-pixel offsets
    (1, s, 1) / (s, 1, 1)) with (M,) row values."""
    return (x[None, :], y[None, :], _col) if x.ndim == 1 else (x, y, _last)


def _deflection_terms(lens: Dict[str, np.ndarray], x: np.ndarray, y: np.ndarray, with_grid: bool):
    """SIE + shear (+ multipoles): the deflection, or (with_grid) the source position x - alpha.

    Per-row constants are folded so each sub-pixel costs a few passes: in the SIE frame
    rotated by phi, xq = q x', psi = sqrt(xq^2 + y'^2) and (Keeton & Kochanek 1998, lenstronomy NIE
    with core s) alpha_x' = (b/e) atan2(e x', psi + s), alpha_y' = (b/e) atanh(e y' / (psi + q^2 s))
    = (b/e) ln2/2 log2((d + e y') / (d - e y')), d = psi + q^2 s > e |y'|.
    """
    if "gamma" in lens:
        return _epl_shear_terms(lens, x, y, with_grid)
    xs, ys, col = _points(x, y)
    phi, q = ellipticity_to_phi_q(lens["e1"], lens["e2"])
    q = np.minimum(q, Q_MAX)
    b = lens["theta_E"] * np.sqrt(q)  # lenstronomy: major-axis b = theta_E sqrt(q) for the product average
    e = np.sqrt(1.0 - q**2)
    s = NIE_CORE_ARCSEC / np.sqrt(q)
    cos, sin = np.cos(phi), np.sin(phi)
    cx, cy = lens["center_x"], lens["center_y"]
    # xq = q ((x - cx) cos + (y - cy) sin);  yr = (y - cy) cos - (x - cx) sin
    xq = (xs * col(q * cos) - col(q * (cx * cos + cy * sin))) + ys * col(q * sin)
    yr = (ys * col(cos) - col(cy * cos - cx * sin)) - xs * col(sin)
    psi = xq * xq
    psi += yr * yr
    np.sqrt(psi, out=psi)
    tmp = psi + col(s)
    a_r = np.arctan2(xq * col(e / q), tmp, out=xq)  # x' = xq / q
    np.add(psi, col(q**2 * s), out=psi)  # d
    yr *= col(e)  # e y'
    np.add(psi, yr, out=tmp)
    np.subtract(psi, yr, out=psi)
    np.divide(tmp, psi, out=tmp)
    b_r = np.log2(tmp, out=tmp)
    amp = b / e
    half_ln2 = 0.5 * np.log(2.0)
    # rotate back: alpha_x = A cos - B sin, alpha_y = A sin + B cos (A, B scaled by amp)
    g1, g2 = lens["gamma1"], lens["gamma2"]
    ox, oy, sign = _shear_terms(g1, g2, xs, ys, col, with_grid)
    ox += a_r * col(sign * amp * cos)
    ox -= b_r * col(sign * amp * half_ln2 * sin)
    oy += a_r * col(sign * amp * sin)
    oy += b_r * col(sign * amp * half_ln2 * cos)
    _add_multipoles(lens, xs, ys, col, ox, oy, sign)
    return ox, oy


def _shear_terms(g1, g2, xs, ys, col, with_grid: bool):
    """(ox, oy, sign): the external shear part of beta = (I - Gamma) theta - alpha (with_grid) or
    of the deflection Gamma theta, and the sign the lens deflection is added with."""
    if with_grid:
        return (xs * col(1.0 - g1)) - ys * col(g2), (ys * col(1.0 + g1)) - xs * col(g2), -1.0
    return (xs * col(g1)) + ys * col(g2), (xs * col(g2)) - ys * col(g1), 1.0


def _add_multipoles(lens, xs, ys, col, ox, oy, sign):
    """Add sign x the circular m = 3, 4 multipole deflections (if present) to ox, oy in place."""
    cx, cy = lens["center_x"], lens["center_y"]
    if "a3" in lens or "a4" in lens:
        dx = xs - col(cx)
        dy = ys - col(cy)
        for m in (3, 4):
            if f"a{m}" in lens:
                mx, my = _multipole_deflection(m, lens[f"a{m}"], lens[f"phi{m}"], dx, dy, col)
                ox += F32(sign) * mx
                oy += F32(sign) * my


EPL_SERIES_TOL = 1e-7


def epl_series_coefficients(t: np.ndarray, f: np.ndarray) -> np.ndarray:
    """(B, N) float64 coefficients c_n of 2F1(1, t/2; 2 - t/2; z) = sum_n c_n z^n (c_0 = 1,
    c_n = c_{n-1} (t/2 + n - 1) / (1 - t/2 + n)), N terms so that f^N < EPL_SERIES_TOL (|z| = f)."""
    f_max = float(np.max(f)) if len(f) else 0.0
    n_terms = 1 if f_max <= 0 else int(np.ceil(np.log(EPL_SERIES_TOL) / np.log(f_max))) + 1
    n = np.arange(1, n_terms)
    ratios = (t[:, None] / 2 + n - 1) / (1 - t[:, None] / 2 + n)
    return np.concatenate([np.ones((len(t), 1)), np.cumprod(ratios, axis=1)], axis=1)


def _epl_shear_terms(lens: Dict[str, np.ndarray], x: np.ndarray, y: np.ndarray, with_grid: bool):
    """EPL (Tessore & Metcalf 2015, lenstronomy EPL conventions) + shear (+ multipoles).

    In the lens frame Z = q x' + i y', R = |Z|, alpha' = 2/(1+q) (b/R)^t Z 2F1(1, t/2; 2 - t/2;
    -f Z/conj(Z)) with b = theta_E sqrt(q), t = gamma - 1, f = (1-q)/(1+q); the hypergeometric
    function is its power series (|z| = f < 1) summed by Horner's rule in float32.
    """
    phi, q = ellipticity_to_phi_q(lens["e1"], lens["e2"])
    b = lens["theta_E"] * np.sqrt(q)
    t = lens["gamma"] - 1.0
    f = (1.0 - q) / (1.0 + q)
    cos, sin = np.cos(phi), np.sin(phi)
    cx, cy = lens["center_x"], lens["center_y"]
    xs, ys, col = _points(x, y)
    zr = xs * col(q * cos) + (ys * col(q * sin) - col(q * (cx * cos + cy * sin)))
    zi = ys * col(cos) - (xs * col(sin) + col(cy * cos - cx * sin))
    r2 = zr * zr + zi * zi
    np.maximum(r2, F32(1e-18), out=r2)  # lenstronomy: R >= 1e-9
    # z = -f Z / conj(Z) = -f (zr^2 - zi^2 + 2 i zr zi) / R^2
    inv = col(-f) / r2
    wr = (zr * zr - zi * zi) * inv
    wi = (zr * zi) * (inv * F32(2.0))
    coef = epl_series_coefficients(t, f).astype(F32)
    fr = np.broadcast_to(col(coef[:, -1]), wr.shape).copy()
    fi = np.zeros_like(wr)
    for k in range(coef.shape[1] - 2, -1, -1):  # F <- c_k + z F
        new_r = wr * fr
        new_r -= wi * fi
        new_r += col(coef[:, k])
        fi *= wr
        fi += wi * fr
        fr = new_r
    # alpha' = 2/(1+q) (b/R)^t (Z F) ; (b/R)^t = 2^(t log2 b - t/2 log2 R^2)
    np.log2(r2, out=r2)
    r2 *= col(-t / 2)
    r2 += col(t * np.log2(b))
    np.exp2(r2, out=r2)
    r2 *= col(2.0 / (1.0 + q))
    ax_r = (zr * fr - zi * fi) * r2
    ay_r = (zr * fi + zi * fr) * r2
    ox, oy, sign = _shear_terms(lens["gamma1"], lens["gamma2"], xs, ys, col, with_grid)
    ox += ax_r * col(sign * cos) - ay_r * col(sign * sin)
    oy += ax_r * col(sign * sin) + ay_r * col(sign * cos)
    _add_multipoles(lens, xs, ys, col, ox, oy, sign)
    return ox, oy


def _multipole_deflection(m: int, a_m: np.ndarray, phi_m: np.ndarray, dx: np.ndarray, dy: np.ndarray, col):
    """lenstronomy MULTIPOLE (circular, m >= 2) deflection about the lens centre [arcsec]."""
    phi = np.arctan2(dy, dx)
    arg = F32(m) * (phi - col(phi_m))
    c_m, s_m = np.cos(arg), np.sin(arg)
    k = col(np.asarray(a_m, dtype=np.float64) / (1.0 - m**2))
    cp, sp = np.cos(phi), np.sin(phi)
    return k * (cp * c_m + F32(m) * sp * s_m), k * (sp * c_m - F32(m) * cp * s_m)


def ray_trace(lens: Dict[str, np.ndarray], x: np.ndarray, y: np.ndarray):
    """Source-plane positions beta = theta - alpha(theta) [arcsec], each (B, N) float32."""
    return _deflection_terms(lens, x, y, with_grid=True)


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
    # (R/R_s)^(1/n) = 2^(log2(r2) / (2n)); I = 2^(log2(e) b_n (1 - (R/R_s)^(1/n)))
    np.log2(r2, out=r2)
    r2 *= _col(0.5 / source["n_sersic"])
    np.exp2(r2, out=r2)
    bn_log2e = sersic_b_n(source["n_sersic"]) / np.log(2.0)
    r2 *= _col(-bn_log2e)
    r2 += _col(bn_log2e)
    np.maximum(r2, F32(EXP2_FLOOR), out=r2)  # no denormals: they are ~10x slower and carry no flux
    return np.exp2(r2, out=r2)


def subpixel_grid(stamp_size: int, pixel_scale: float, supersampling: int):
    """Flat float32 sub-pixel coordinates x, y [arcsec], ordered (sub-offset, row, col) so that
    :func:`bin_pixels` sums contiguous blocks (much faster than a strided mean)."""
    s, h = int(supersampling), int(stamp_size)
    sub = ((np.arange(s) + 0.5) / s - 0.5) * pixel_scale
    centre = (np.arange(h) - (h - 1) / 2.0) * pixel_scale
    x = (sub[None, :, None, None] + centre[None, None, None, :]) + np.zeros((s, s, h, h))
    y = (sub[:, None, None, None] + centre[None, None, :, None]) + np.zeros((s, s, h, h))
    return x.astype(F32).ravel(), y.astype(F32).ravel()


def bin_pixels(sub: np.ndarray, stamp_size: int, supersampling: int) -> np.ndarray:
    """Mean over the s x s sub-pixels of values on :func:`subpixel_grid`: (B, s^2 H^2) -> (B, H, W)."""
    s, h = int(supersampling), int(stamp_size)
    blocks = sub.reshape(-1, s * s, h, h)
    out = blocks.sum(axis=1, dtype=F32)
    out *= F32(1.0 / (s * s))
    return out


def convolve_bands(pixels: np.ndarray, kernels: np.ndarray, scale: np.ndarray | None = None,
                   out: np.ndarray | None = None, symmetric: bool | None = None) -> np.ndarray:
    """Centred 'same' convolution of (B, H, W) images with per-band kernels (B, C, K, K), odd K,
    times an optional per-row, per-band factor ``scale`` (B, C) (e.g. the band fluxes): returns
    (B, C, H, W) float32, written into ``out`` when given. ``symmetric``: True when the caller
    knows every kernel is symmetric under x -> -x and y -> -y (Moffat kernels of
    :func:`dhs_gen.psf.psfsize_kernels`, mirrored by construction), None to test it.

    Batched float32 FFTs on an (H + K//2)-sized grid with the kernel centred on index (0, 0) (the
    circular wrap-around of the linear convolution lands only outside the kept H x W window); one
    image transform per row, shared by its bands (the padding rows skipped along x; the inverse
    along x on the H kept rows only). Symmetric kernels (every Moffat): real spectra
    by cosine sums (:func:`_half_spectra`, ~10x cheaper than FFTs), multiplied in one compiled
    pass (:func:`dhs_gen.lensing.kernels.even_spectrum_product`); any other kernel:
    :func:`kernel_spectra`."""
    from scipy import fft

    b, h, w = pixels.shape
    c, r = kernels.shape[1], kernels.shape[-1] // 2
    ny, nx = fft.next_fast_len(h + r, real=True), fft.next_fast_len(w + r, real=True)
    scale = np.ones((b, c), dtype=F32) if scale is None else np.ascontiguousarray(scale, dtype=F32)
    padded, f_img, spec = _workspace(b, c, h, w, ny, nx)
    # the image's rfft2 on the (ny, nx) grid: along x on its h rows only (the ny - h padding rows
    # are zero, so are their transforms), then along y in place
    padded[..., :w] = pixels
    f_img[:, :h] = fft.rfft(padded, axis=-1)
    fft.fft(f_img, axis=-2, overwrite_x=True)  # in place (contiguous complex64)
    kernels = np.ascontiguousarray(kernels, dtype=F32)
    if r and (symmetric or is_point_symmetric(kernels)):
        even_spectrum_product(_half_spectra(kernels, ny, nx), f_img.view(F32), scale, spec.view(F32))
    else:
        spec = kernel_spectra(kernels, ny, nx) * f_img[:, None]
        spec *= scale[:, :, None, None]
    rows = fft.ifft(spec, axis=-2, overwrite_x=True)[..., :h, :]
    res = fft.irfft(rows, n=nx, axis=-1)[..., :w]
    if out is None:
        return np.ascontiguousarray(res, dtype=F32)
    out[...] = res
    return out


_SCRATCH = threading.local()


def _workspace(b: int, c: int, h: int, w: int, ny: int, nx: int):
    """This thread's scratch arrays of :func:`convolve_bands` for one batch shape, reused across
    calls (fresh arrays this large page-fault on every call): the x-padded image (b, h, nx)
    float32 (columns w.. stay 0), the image spectrum (b, ny, nx//2 + 1) complex64 (rows h.. stay
    0 before the transform along y, which runs in place) and the product spectrum (b, c, ny,
    nx//2 + 1) complex64 (~4 MB for 32 rows of 64-px stamps). Two shapes per thread (a batch's last
    chunk is smaller)."""
    cache = _SCRATCH.__dict__.setdefault("arrays", {})
    key = (b, c, h, w, ny, nx)
    if key not in cache:
        if len(cache) >= 2:
            cache.clear()
        cache[key] = (np.zeros((b, h, nx), dtype=F32), np.empty((b, ny, nx // 2 + 1), dtype=np.complex64),
                      np.empty((b, c, ny, nx // 2 + 1), dtype=np.complex64))
    padded, f_img, spec = cache[key]
    f_img[:, h:] = 0
    return padded, f_img, spec


@lru_cache(maxsize=8)
def cosine_table(r: int, n: int, m: int) -> np.ndarray:
    """(m, r + 1) float32 w_d cos(2 pi f d / n), f = 0..m-1, d = 0..r, w_0 = 1 and w_d = 2 (the
    offsets +-d of a symmetric kernel fold onto d); read-only."""
    fold = np.where(np.arange(r + 1) > 0, 2.0, 1.0)
    table = (np.cos(2.0 * np.pi * np.outer(np.arange(m), np.arange(r + 1)) / n) * fold).astype(F32)
    table.flags.writeable = False
    return table


def _half_spectra(kernels: np.ndarray, ny: int, nx: int) -> np.ndarray:
    """Real rfft2 spectra of odd kernels (B, C, K, K) symmetric under x -> -x and y -> -y (every
    Moffat), centred on index (0, 0), on rows f_y = 0..ny//2 (the others mirror them):
    (ny//2 + 1, B C, nx//2 + 1) float32, the cosine sums C_y k C_x^T over each kernel's quadrant
    as two matrix products over the batch (keep B C small: OpenBLAS threads larger products, at
    ~10x the CPU time)."""
    b, c, k = kernels.shape[0], kernels.shape[1], kernels.shape[-1]
    r, my, mx = k // 2, ny // 2 + 1, nx // 2 + 1
    out = np.empty((my, b * c, mx), dtype=F32)
    for start in range(0, b, SPECTRA_ROWS):
        part = kernels[start:start + SPECTRA_ROWS]
        m = len(part) * c
        quad = part[..., r:, r:].reshape(-1, r + 1)  # rows (b, c, d_y), columns d_x
        t = (quad @ cosine_table(r, nx, mx).T).reshape(m, r + 1, mx)  # summed over d_x
        t = t.transpose(1, 0, 2).reshape(r + 1, -1)
        out[:, start * c:start * c + m] = (cosine_table(r, ny, my) @ t).reshape(my, m, mx)  # summed over d_y
    return out


SPECTRA_ROWS = 8  # rows per kernel-spectrum product (larger ones start OpenBLAS threads: ~10x the CPU time)


def kernel_spectra(kernels: np.ndarray, ny: int, nx: int) -> np.ndarray:
    """rfft2 spectra (B, C, ny, nx//2 + 1) complex64 of odd (B, C, K, K) kernels centred on index
    (0, 0), by FFT (symmetric kernels take the cosine sums of :func:`_half_spectra` instead)."""
    from scipy import fft

    k, r = kernels.shape[-1], kernels.shape[-1] // 2
    padded = np.zeros(kernels.shape[:-2] + (ny, nx), dtype=F32)
    padded[..., :k, :k] = kernels
    return fft.rfft2(np.roll(padded, (-r, -r), axis=(-2, -1)), axes=(-2, -1))


SUPERSAMPLE_TAIL = 1e-6  # the faintest pixel centres holding this fraction of the light are not supersampled


def pixel_centre_axis(stamp_size: int, pixel_scale: float) -> np.ndarray:
    """(H,) float64 pixel-centre coordinates [arcsec] along one axis: (k - (H-1)/2) pixel_scale."""
    return (np.arange(int(stamp_size)) - (int(stamp_size) - 1) / 2.0) * pixel_scale


def pixel_centres(stamp_size: int, pixel_scale: float):
    """Flat float32 pixel-centre coordinates x, y [arcsec] of an H x H stamp, row-major (P = H^2,)."""
    h = int(stamp_size)
    centre = ((np.arange(h) - (h - 1) / 2.0) * pixel_scale).astype(F32)
    return np.tile(centre, h), np.repeat(centre, h)


def subpixel_offsets(supersampling: int, pixel_scale: float):
    """Sub-pixel centre offsets from the pixel centre [arcsec], float32 (dx (1, s, 1), dy (s, 1, 1)):
    with per-pixel (M,) centres, x0 + dx and y0 + dy broadcast to (sub-row, sub-col, pixel)."""
    s = int(supersampling)
    off = (((np.arange(s) + 0.5) / s - 0.5) * pixel_scale).astype(F32)
    return off.reshape(1, s, 1), off.reshape(s, 1, 1)


def pixels_to_supersample(lit: np.ndarray, centre_x: np.ndarray, centre_y: np.ndarray, radius: np.ndarray,
                          pixel_scale: float) -> np.ndarray:
    """(B, H, W) bool: the pixels to integrate over sub-pixels — every pixel whose 3 x 3
    neighbourhood has a lit pixel centre (``lit`` (B, H, W) bool), and every pixel within
    ``radius`` (B,) [arcsec] of the lens centre ``centre_x, centre_y`` (B,) [arcsec], where the
    lens map changes too fast for pixel centres to tell. A pixel left out has only dark sub-pixels
    (the lens map moves a sub-pixel less than the distance to the neighbouring centres).
    :func:`dhs_gen.lensing.kernels.dilate_or_near` per row."""
    lit = np.ascontiguousarray(lit, dtype=np.bool_)
    b, h, w = lit.shape
    keep = np.empty_like(lit)
    xs, ys = pixel_centre_axis(w, pixel_scale), pixel_centre_axis(h, pixel_scale)
    cx, cy = np.asarray(centre_x, dtype=np.float64), np.asarray(centre_y, dtype=np.float64)
    r2 = np.asarray(radius, dtype=np.float64) ** 2
    for i in range(b):
        dilate_or_near(lit[i], xs, ys, cx[i], cy[i], r2[i], keep[i])
    return keep


def central_radius(theta_e: np.ndarray, pixel_scale: float) -> np.ndarray:
    """Radius [arcsec] about the lens centre always supersampled: theta_E / 2 (inside it the SIE
    map expands, |1 - theta_E / r| > 1) plus two pixels."""
    return 0.5 * np.asarray(theta_e, dtype=np.float64) + 2.0 * pixel_scale
