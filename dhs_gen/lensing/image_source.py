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
    validate_psf_fwhm,
)
from dhs_gen.lensing.render import FAST_CHUNK_ROWS, psf_kernels


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
    bad = ~np.isfinite(t).reshape(len(t), int(np.prod(t.shape[1:]))).all(axis=1)
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
                          bx: np.ndarray, by: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """Bilinear surface brightness (B, C, N) float32 of templates ``sb`` (B, C, h, w) [per arcsec^2]
    with pixel scales ``scale`` (B,) [arcsec] centred at (cx, cy) (B,), at points bx, by (B, N);
    or, with ``rows`` (M,) template indices, at points bx, by (N, M) (point groups last, column j
    of template rows[j]) -> (C, N, M).

    The template gets a one-pixel zero border and coordinates are clamped onto it, so points
    outside read exactly 0 (lenstronomy INTERPOL). The four corners of each cell are stored
    together (16 bytes) so one gather per point and channel fetches them all."""
    b, c, h, w = sb.shape
    padded = np.zeros((b, c, h + 2, w + 2), dtype=np.float32)
    padded[:, :, 1:-1, 1:-1] = sb
    corners = np.stack([padded[..., :-1, :-1], padded[..., :-1, 1:], padded[..., 1:, :-1], padded[..., 1:, 1:]],
                       axis=-1)  # (b, c, h+1, w+1, 4)
    cells = np.ascontiguousarray(corners).view(np.complex128).reshape(-1)  # one 16-byte item per cell
    batch = rows is None
    if batch:
        rows = np.arange(b)

    def per_row(v):  # (B,) -> (B, 1) against (B, N) points; (M,) stays, broadcasting along the last axis
        return v[:, None] if batch else v

    inv = per_row((1.0 / scale[rows]).astype(np.float32))
    fx = bx - per_row(cx[rows].astype(np.float32))
    fx *= inv
    fx += np.float32((w - 1) / 2 + 1)
    np.clip(fx, 0, w + 1, out=fx)
    fy = by - per_row(cy[rows].astype(np.float32))
    fy *= inv
    fy += np.float32((h - 1) / 2 + 1)
    np.clip(fy, 0, h + 1, out=fy)
    i0 = fx.astype(np.int32)
    np.minimum(i0, w, out=i0)
    j0 = fy.astype(np.int32)
    np.minimum(j0, h, out=j0)
    fx -= i0  # tx
    fy -= j0  # ty
    j0 *= w + 1
    j0 += i0
    cell = (h + 1) * (w + 1)
    out = np.empty((c,) + bx.shape, dtype=np.float32)
    for ch in range(c):
        idx = j0 + per_row((rows * c * cell + ch * cell).astype(np.int32))
        q = cells.take(idx).view(np.float32).reshape(bx.shape + (4,))
        top = q[..., 1] - q[..., 0]
        top *= fx
        top += q[..., 0]
        bot = q[..., 3] - q[..., 2]
        bot *= fx
        bot += q[..., 2]
        bot -= top
        bot *= fy
        bot += top
        out[ch] = bot
    return np.moveaxis(out, 0, 1) if batch else out


def render_lensed_image(lens: Dict[str, np.ndarray], templates, template_pixel_scale, fluxes, center_x, center_y,
                        psf_fwhm, *, stamp_size: int = 64, pixel_scale: float = PIXEL_SCALE_ARCSEC,
                        supersampling: int = 4, backend: str = "fast") -> np.ndarray:
    """Lensed image sources, float32 (B, 3, H, W) nanomaggies per pixel (g, r, z), noiseless.

    ``templates`` (B, S, S) shared by all bands or (B, 3, S, S) per band, flux per template
    pixel (normalised to unit sum); ``template_pixel_scale`` (B,) [arcsec/template pixel];
    ``fluxes`` (B, 3) total unlensed g, r, z flux [nanomaggies]; ``center_x/y`` (B,) template
    centre in the source plane [arcsec]; lens and PSF as for render_lensed_sersic.
    """
    from dhs_gen.lensing.render import validate_call

    lens_p, n, stamp_size, supersampling = validate_call(backend, lens, stamp_size, pixel_scale, supersampling)
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
    shared = t.shape[1] == 1  # one shape for g, r, z: interpolate once, scale by the band fluxes after
    images = np.empty((n, 3, stamp_size, stamp_size), dtype=np.float32)
    factors = antialias_factors(geo["scale"], pixel_scale / supersampling)
    for factor in np.unique(factors):
        rows = np.flatnonzero(factors == factor)
        t_rows, used = block_sum(t[rows], int(factor)) if factor > 1 else (t[rows], 1)
        g_rows = {k: v[rows] for k, v in geo.items()}
        g_rows["scale"] = g_rows["scale"] * used
        row_flux = np.ones((len(rows), 1)) if shared else flux[rows]
        sb = template_to_surface_brightness(t_rows, row_flux[:, :, None, None], g_rows["scale"][:, None, None, None])
        lens_rows = {k: v[rows] for k, v in lens_p.items()}
        if backend == "lenstronomy":
            from dhs_gen.lensing.reference import render_image_reference

            images[rows] = render_image_reference(lens_rows, sb, g_rows, kernels[rows], stamp_size, pixel_scale,
                                                  supersampling)
        else:
            images[rows] = _render_fast(lens_rows, sb.astype(np.float32), g_rows, kernels[rows], stamp_size,
                                        pixel_scale, supersampling)
    if shared:
        images *= flux[:, :, None, None].astype(np.float32)
    return check_finite_output(images, "render_lensed_image")


def _render_fast(lens, sb, geo, kernels, stamp_size, pixel_scale, supersampling):
    """(B, 3, H, W): sb (B, C, h, w) lensed, binned and convolved; C = 1 -> the same image convolved
    with each band's kernel (unit flux), C = 3 -> each band its own template and kernel.

    Pixel centres are ray-traced first; only pixels whose 3 x 3 neighbourhood has a centre landing
    on the template (plus a one-pixel margin), or near the lens centre, are integrated over sub-pixels
    (:func:`dhs_gen.lensing.render.supersampled_pixels`); every other sub-pixel reads 0 anyway."""
    from dhs_gen.lensing.render import PIXEL_BLOCK, _pixel_centres, supersampled_pixels

    x0, y0 = _pixel_centres(stamp_size, float(pixel_scale))
    sub = fast.subpixel_offsets(supersampling, pixel_scale)
    n, c, h, w = sb.shape
    out = np.empty((n, 3, stamp_size, stamp_size), dtype=np.float32)
    area = np.float32(pixel_scale**2 / supersampling**2)
    reach_x = ((w + 1) / 2.0) * geo["scale"] + pixel_scale  # beyond this from the template centre: 0
    reach_y = ((h + 1) / 2.0) * geo["scale"] + pixel_scale
    for start in range(0, n, FAST_CHUNK_ROWS):
        chunk = slice(start, min(start + FAST_CHUNK_ROWS, n))
        m = chunk.stop - chunk.start
        lens_rows = {k: v[chunk] for k, v in lens.items()}
        bx, by = fast.ray_trace(lens_rows, x0, y0)
        lit = (np.abs(bx - geo["center_x"][chunk, None]) < reach_x[chunk, None]) & \
            (np.abs(by - geo["center_y"][chunk, None]) < reach_y[chunk, None])
        rows, pix = supersampled_pixels(lit.reshape(m, stamp_size, stamp_size), lens_rows, pixel_scale)
        binned = np.zeros((c, m, stamp_size * stamp_size), dtype=np.float32)
        for s0 in range(0, len(rows), PIXEL_BLOCK):
            r, p = rows[s0:s0 + PIXEL_BLOCK], pix[s0:s0 + PIXEL_BLOCK]
            sbx, sby = fast.ray_trace({k: v[r] for k, v in lens_rows.items()}, x0[p] + sub[0], y0[p] + sub[1])
            vals = interpolate_templates(sb[chunk], geo["scale"][chunk], geo["center_x"][chunk],
                                         geo["center_y"][chunk], sbx.reshape(-1, len(r)), sby.reshape(-1, len(r)),
                                         rows=r)
            binned[:, r, p] = vals.sum(axis=1, dtype=np.float32)
        pixels = np.moveaxis(binned.reshape(c, m, stamp_size, stamp_size), 0, 1) * area
        if c == 1:
            out[chunk] = fast.convolve_bands(pixels[:, 0], kernels[chunk])
        else:
            for band in range(3):
                out[chunk, band] = fast.convolve_bands(np.ascontiguousarray(pixels[:, band]),
                                                       kernels[chunk, band:band + 1])[:, 0]
    return out
