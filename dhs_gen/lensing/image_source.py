"""Lensing of pixelised (image) sources: COSMOS galaxies and other templates.

Units — the one conversion (the earlier pipeline's 1000x bug was skipping it): a template is
stored in flux per template pixel (normalised here to unit sum per band); before any
interpolated light model it becomes surface brightness

    surface_brightness [nmgy / arcsec^2] = template * flux_nmgy / template_pixel_scale_arcsec**2

(:func:`template_to_surface_brightness`). The lensed image samples this surface brightness at
ray-traced sub-pixel positions by bilinear interpolation (lenstronomy INTERPOL's convention:
template pixel (r, c) at x = center_x + (c - (w-1)/2) * scale, y = center_y + (r - (h-1)/2) *
scale, zero outside a one-pixel zero border), averages the sub-pixels, multiplies by the stamp
pixel area (nmgy per pixel) and convolves with the band's Moffat kernel.
"""
from __future__ import annotations

from typing import Dict

import numpy as np

from dhs_gen import PIXEL_SCALE_ARCSEC
from dhs_gen.lensing import fast
from dhs_gen.lensing.params import (
    LensingInputError,
    as_batch,
    check_finite_output,
    validate_grid,
    validate_lens,
    validate_psf_fwhm,
)
from dhs_gen.lensing.render import FAST_CHUNK_ROWS, _flat_grid, psf_kernels


def template_to_surface_brightness(template, flux_nmgy, pixel_scale_arcsec):
    """Template [fraction of the flux per template pixel, unit sum] x total flux [nanomaggies]
    / pixel area [arcsec^2] -> surface brightness [nanomaggies / arcsec^2]."""
    return np.asarray(template) * flux_nmgy / np.asarray(pixel_scale_arcsec) ** 2


def normalise_templates(templates) -> np.ndarray:
    """(B, C, h, w) float32 templates with unit sum per row and band; accepts (B, h, w) (C = 1).

    Raises LensingInputError naming the row for non-finite pixels or a non-positive sum."""
    t = np.asarray(templates, dtype=np.float32)
    if t.ndim == 3:
        t = t[:, None]
    if t.ndim != 4 or t.shape[1] not in (1, 3) or t.shape[2] != t.shape[3] or t.shape[2] < 2:
        raise LensingInputError(f"templates must be square (B, S, S) or (B, 1|3, S, S) with S >= 2, got {t.shape}")
    bad = ~np.isfinite(t).reshape(len(t), -1).all(axis=1)
    if bad.any():
        raise LensingInputError(f"templates: non-finite pixels in row {int(np.flatnonzero(bad)[0])}")
    sums = t.sum(axis=(2, 3), dtype=np.float64)
    if (sums <= 0).any():
        raise LensingInputError(f"templates: non-positive total in row {int(np.argwhere(sums <= 0)[0][0])}")
    return (t / sums[:, :, None, None]).astype(np.float32)


def antialias_factors(scale: np.ndarray, min_scale: float) -> np.ndarray:
    """Per-row integer block factor bringing a template pixel scale up to >= ``min_scale``."""
    return np.maximum(np.ceil(min_scale / np.asarray(scale) - 1e-9), 1).astype(np.int64)


def block_sum(t: np.ndarray, factor: int) -> np.ndarray:
    """Flux-conserving, centre-preserving f x f block sums of square (B, C, S, S) templates.

    Point-sampling a template finer than the stamp's sub-pixel grid aliases its flux (a 0.03"
    HST template sampled every 0.0655" is off by ~2%), so templates are first summed in blocks
    to a pixel scale >= the sub-pixel size. The template is zero-padded symmetrically (the factor
    is raised by one when no symmetric padding exists), so its centre does not move."""
    size = t.shape[-1]
    while True:
        m = -(-size // factor)
        if (factor * m - size) % 2:
            m += 1
        if (factor * m - size) % 2 == 0:
            break
        factor += 1
    pad = factor * m - size
    padded = np.pad(t, ((0, 0), (0, 0), (pad // 2, pad - pad // 2), (pad // 2, pad - pad // 2)))
    return padded.reshape(t.shape[0], t.shape[1], m, factor, m, factor).sum(axis=(3, 5)), factor


def interpolate_templates(sb: np.ndarray, scale: np.ndarray, cx: np.ndarray, cy: np.ndarray,
                          bx: np.ndarray, by: np.ndarray) -> np.ndarray:
    """Bilinear surface brightness (B, C, N) float32 of templates ``sb`` (B, C, h, w) [per arcsec^2]
    with pixel scales ``scale`` (B,) [arcsec] centred at (cx, cy) (B,), at points bx, by (B, N)."""
    b, c, h, w = sb.shape
    padded = np.zeros((b, c, h + 2, w + 2), dtype=np.float32)
    padded[:, :, 1:-1, 1:-1] = sb
    inv = (1.0 / scale)[:, None].astype(np.float32)
    fx = (bx - cx[:, None].astype(np.float32)) * inv + np.float32((w - 1) / 2 + 1)
    fy = (by - cy[:, None].astype(np.float32)) * inv + np.float32((h - 1) / 2 + 1)
    inside = (fx >= 0) & (fx <= w + 1) & (fy >= 0) & (fy <= h + 1)
    np.clip(fx, 0, w + 1, out=fx)
    np.clip(fy, 0, h + 1, out=fy)
    i0 = np.minimum(fx.astype(np.int32), w)
    j0 = np.minimum(fy.astype(np.int32), h)
    tx = fx - i0
    ty = fy - j0
    idx = j0 * (w + 2) + i0 + (np.arange(b, dtype=np.int64) * c * (h + 2) * (w + 2))[:, None]
    flat = padded.reshape(-1)
    out = np.empty((b, c, bx.shape[1]), dtype=np.float32)
    w00, w01, w10, w11 = (1 - tx) * (1 - ty), tx * (1 - ty), (1 - tx) * ty, tx * ty
    for ch in range(c):
        k = idx + ch * (h + 2) * (w + 2)
        v = w00 * flat[k] + w01 * flat[k + 1] + w10 * flat[k + w + 2] + w11 * flat[k + w + 3]
        out[:, ch] = np.where(inside, v, np.float32(0))
    return out


def render_lensed_image(lens: Dict[str, np.ndarray], templates, template_pixel_scale, fluxes, center_x, center_y,
                        psf_fwhm, *, stamp_size: int = 64, pixel_scale: float = PIXEL_SCALE_ARCSEC,
                        supersampling: int = 4, backend: str = "fast") -> np.ndarray:
    """Lensed image sources, float32 (B, 3, H, W) nanomaggies per pixel (g, r, z), noiseless.

    ``templates`` (B, S, S) shared by all bands or (B, 3, S, S) per band, flux per template
    pixel (normalised to unit sum); ``template_pixel_scale`` (B,) [arcsec/template pixel];
    ``fluxes`` (B, 3) total unlensed g, r, z flux [nanomaggies]; ``center_x/y`` (B,) template
    centre in the source plane [arcsec]; lens and PSF as for render_lensed_sersic.
    """
    from dhs_gen.lensing.render import BACKENDS

    if backend not in BACKENDS:
        raise LensingInputError(f"backend must be one of {BACKENDS}, got {backend!r}")
    validate_grid(stamp_size, pixel_scale, supersampling)
    stamp_size, supersampling = int(stamp_size), int(supersampling)
    lens_p = validate_lens(lens)
    n = len(lens_p["theta_E"])
    t = normalise_templates(templates)
    if len(t) != n:
        raise LensingInputError(f"templates has {len(t)} rows, expected {n}")
    geo = as_batch({"scale": template_pixel_scale, "center_x": center_x, "center_y": center_y},
                   ("scale", "center_x", "center_y"), "image source", size=n)
    if (geo["scale"] <= 0).any():
        raise LensingInputError(f"template_pixel_scale row {int(np.argmax(geo['scale'] <= 0))} must be > 0 arcsec")
    flux = np.asarray(fluxes, dtype=np.float64)
    if flux.shape != (n, 3) or not np.isfinite(flux).all() or (flux < 0).any():
        raise LensingInputError(f"fluxes must be finite, >= 0 nanomaggies, shape ({n}, 3); got shape {flux.shape}")
    kernels = psf_kernels(validate_psf_fwhm(psf_fwhm, n), stamp_size, pixel_scale)
    if t.shape[1] == 1:
        t = np.repeat(t, 3, axis=1)
    render = _render_reference if backend == "lenstronomy" else _render_fast
    images = np.empty((n, 3, stamp_size, stamp_size), dtype=np.float32)
    factors = antialias_factors(geo["scale"], pixel_scale / supersampling)
    for factor in np.unique(factors):
        rows = np.flatnonzero(factors == factor)
        t_rows, used = block_sum(t[rows], int(factor)) if factor > 1 else (t[rows], 1)
        g_rows = {k: v[rows] for k, v in geo.items()}
        g_rows["scale"] = g_rows["scale"] * used
        sb = template_to_surface_brightness(t_rows, flux[rows, :, None, None], g_rows["scale"][:, None, None, None])
        images[rows] = render({k: v[rows] for k, v in lens_p.items()}, sb.astype(np.float32), g_rows,
                              kernels[rows], stamp_size, pixel_scale, supersampling)
    return check_finite_output(images, "render_lensed_image")


def _render_fast(lens, sb, geo, kernels, stamp_size, pixel_scale, supersampling):
    x, y = _flat_grid(stamp_size, float(pixel_scale), supersampling)
    n = len(sb)
    out = np.empty((n, 3, stamp_size, stamp_size), dtype=np.float32)
    area = np.float32(pixel_scale**2)
    for start in range(0, n, FAST_CHUNK_ROWS):
        rows = slice(start, min(start + FAST_CHUNK_ROWS, n))
        bx, by = fast.ray_trace({k: v[rows] for k, v in lens.items()}, x, y)
        vals = interpolate_templates(sb[rows], geo["scale"][rows], geo["center_x"][rows], geo["center_y"][rows],
                                     bx, by)
        m = vals.shape[0]
        pix = fast.bin_pixels(vals.reshape(m * 3, -1), stamp_size, supersampling).reshape(m, 3, stamp_size,
                                                                                          stamp_size)
        pix *= area
        for band in range(3):
            out[rows, band] = fast.convolve_bands(pix[:, band], kernels[rows, band:band + 1])[:, 0]
    return out


def _render_reference(lens, sb, geo, kernels, stamp_size, pixel_scale, supersampling):
    from dhs_gen.lensing.reference import image_model, lens_model_kwargs

    n = len(sb)
    out = np.empty((n, 3, stamp_size, stamp_size), dtype=np.float32)
    for i in range(n):
        models, kwargs_lens = lens_model_kwargs(lens, i)
        for band in range(3):
            model = image_model(stamp_size, pixel_scale, supersampling, kernels[i, band], models, ["INTERPOL"])
            src = {"image": np.asarray(sb[i, band], dtype=np.float64), "amp": 1.0, "scale": float(geo["scale"][i]),
                   "center_x": float(geo["center_x"][i]), "center_y": float(geo["center_y"][i]), "phi_G": 0.0}
            out[i, band] = model.image(kwargs_lens=kwargs_lens, kwargs_source=[src])
    return out
