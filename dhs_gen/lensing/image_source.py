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

Fast backend (compiled numba kernels, float32, one thread): templates finer than the sub-pixel
grid are block-summed (:func:`block_sum`, float64 sums) straight into surface brightness with
the zero border; pixel corners are ray-traced and only pixels whose corners' source-plane box
(widened by a quarter pixel for the map's curvature) reaches the template's non-zero footprint,
or that lie near the lens centre, are integrated over sub-pixels — the rest of the stamp reads
exactly 0 (measured: the same pixels as supersampling every pixel near the footprint). For SIE +
shear lenses one kernel traces each kept pixel's sub-pixels
(:func:`dhs_gen.lensing.kernels.sie_source_position`) and reads the template; EPL and
multipole lenses are ray-traced by :func:`dhs_gen.lensing.fast.ray_trace` (numpy) and read by
the same bilinear kernel. A template shared by g, r, z is lensed once at unit flux and the band
fluxes are folded into the PSF kernels (:func:`dhs_gen.lensing.fast.convolve_bands`).
Agreement with lenstronomy INTERPOL: <= 1e-5 relative L2, <= 1e-4 in total flux (tests).
"""
from __future__ import annotations

from typing import Dict, Tuple

import numpy as np

from dhs_gen import PIXEL_SCALE_ARCSEC
from dhs_gen.jit import kernel, kernel_strict
from dhs_gen.lensing import fast
from dhs_gen.lensing.kernels import sie_row_coefficients, sie_source_position, sie_tuple
from dhs_gen.lensing.params import (
    LensingInputError,
    as_batch,
    check_finite_output,
    output_images,
    validate_grid,
    validate_psf_fwhm,
)
from dhs_gen.lensing.render import FAST_CHUNK_ROWS, psf_kernels


def template_to_surface_brightness(template, flux_nmgy, pixel_scale_arcsec):
    """Template [fraction of the flux per template pixel, unit sum] x total flux [nanomaggies]
    / pixel area [arcsec^2] -> surface brightness [nanomaggies / arcsec^2]."""
    return np.asarray(template) * flux_nmgy / np.asarray(pixel_scale_arcsec) ** 2


def template_sums(templates) -> Tuple[np.ndarray, np.ndarray]:
    """(t, sums): ``templates`` as contiguous float32 (B, C, S, S) (accepts (B, S, S): C = 1) and
    their totals per row and band (B, C) float64 [template units], all > 0.

    Raises LensingInputError naming the row for non-finite pixels or a non-positive sum."""
    t = np.ascontiguousarray(templates, dtype=np.float32)
    if t.ndim == 3:
        t = t[:, None]
    if t.ndim != 4 or t.shape[1] not in (1, 3) or t.shape[2] != t.shape[3] or t.shape[2] < 2:
        raise LensingInputError(f"templates must be square (B, S, S) or (B, 1|3, S, S) with S >= 2, got {t.shape}")
    sums = np.empty(t.shape[:2], dtype=np.float64)
    finite = np.empty(len(t), dtype=np.bool_)
    _sums_and_finite(t, sums, finite)
    if not finite.all():
        raise LensingInputError(f"templates: non-finite pixels in row {int(np.flatnonzero(~finite)[0])}")
    if (sums <= 0).any():
        raise LensingInputError(f"templates: non-positive total in row {int(np.argwhere(sums <= 0)[0][0])}")
    return t, sums


@kernel_strict
def _sums_and_finite(t, sums, finite):
    """sums[r, ch] = float64 total of t[r, ch]; finite[r] = no NaN/inf pixel in row r (IEEE:
    v - v is NaN exactly for a non-finite v). Per-column accumulators keep the loop vectorised
    without re-associating a sum."""
    b, c, h, w = t.shape
    acc = np.empty(w, dtype=np.float64)
    bad = np.empty(w, dtype=np.float32)
    for r in range(b):
        bad[:] = 0.0
        for ch in range(c):
            acc[:] = 0.0
            for j in range(h):
                for i in range(w):
                    v = t[r, ch, j, i]
                    acc[i] += v
                    bad[i] += v - v
            sums[r, ch] = acc.sum()
        finite[r] = bad.sum() == 0


def antialias_factors(scale: np.ndarray, min_scale: float) -> np.ndarray:
    """Per-row integer block factor bringing a template pixel scale up to >= ``min_scale``."""
    return np.maximum(np.ceil(min_scale / np.asarray(scale) - 1e-9), 1).astype(np.int64)


def block_geometry(size: int, factor: int) -> Tuple[int, int, int]:
    """(factor, m, lo): an S = ``size`` template zero-padded by ``lo`` pixels on each side sums to
    m x m blocks of factor x factor pixels (factor m - S = 2 lo; the factor is raised by one
    when no symmetric padding exists, so the template centre does not move)."""
    while True:
        m = -(-size // factor)
        if (factor * m - size) % 2:
            m += 1
        if (factor * m - size) % 2 == 0:
            return factor, m, (factor * m - size) // 2
        factor += 1


def block_sum(t: np.ndarray, factor: int, rows: np.ndarray | None = None, scale: np.ndarray | None = None,
              border: int = 0) -> Tuple[np.ndarray, int]:
    """(blocks, factor used): flux-conserving, centre-preserving factor x factor block sums of rows
    ``rows`` (default all) of square (B, C, S, S) templates, times ``scale`` (M, C) (default 1)
    per row and band, inside a ``border``-pixel zero frame: float32 (M, C, m + 2 border,
    m + 2 border), m and the factor from :func:`block_geometry`.

    Point-sampling a template finer than the stamp's sub-pixel grid aliases its flux (a 0.03"
    HST template sampled every 0.0655" is off by ~2%), so templates are first summed in blocks
    to a pixel scale >= the sub-pixel size (factor 1: a scaled copy). Sums run in float64."""
    t = np.ascontiguousarray(t, dtype=np.float32)
    rows = np.arange(len(t)) if rows is None else np.asarray(rows, dtype=np.int64)
    scale = np.ones((len(rows), t.shape[1])) if scale is None else np.asarray(scale, dtype=np.float64)
    factor, m, lo = block_geometry(t.shape[-1], int(factor))
    out = np.zeros((len(rows), t.shape[1], m + 2 * border, m + 2 * border), dtype=np.float32)
    _block_sums(t, rows, factor, lo, np.ascontiguousarray(np.broadcast_to(scale, out.shape[:2])), border, out)
    return out, factor


@kernel
def _block_sums(t, rows, factor, lo, scale, border, out):
    """out[k, ch, border + J, border + I] = scale[k, ch] x the float64 sum of t[rows[k], ch] over
    pixels (y, x) with (y + lo) // factor = J, (x + lo) // factor = I (see :func:`block_sum`)."""
    size = t.shape[-1]
    m = out.shape[-1] - 2 * border
    block = (np.arange(size) + lo) // factor  # block index of each template row / column
    acc = np.empty((m, m), dtype=np.float64)
    for k in range(len(rows)):
        for ch in range(t.shape[1]):
            acc[:] = 0.0
            for y in range(size):
                line = acc[block[y]]
                for x in range(size):
                    line[block[x]] += t[rows[k], ch, y, x]
            for j in range(m):
                for i in range(m):
                    out[k, ch, border + j, border + i] = acc[j, i] * scale[k, ch]


@kernel
def _sie_points(coef, x, y, bx, by):
    """(bx, by)[r, p] = the SIE + shear source-plane position [arcsec] of the point (x[p], y[p])
    [arcsec] under lens row r (``coef`` (B, kernels.N_SIE) rows of :func:`kernels.sie_row_coefficients`)."""
    for r in range(coef.shape[0]):
        c = sie_tuple(coef[r])  # scalars in registers: the point loop vectorises
        for p in range(len(x)):
            u, v = sie_source_position(c, x[p], y[p])
            bx[r, p] = u
            by[r, p] = v


@kernel
def _lit_pixels(padded, cx, cy, inv, margin, bx, by, lit):
    """lit[r, a W + b] = True where the source-plane images (bx, by)[r] [arcsec] of the four corners
    of stamp pixel (a, b) (corner grid (H + 1) x (W + 1), row-major), their bounding box widened
    by ``margin[r]`` template pixels, reach a non-zero pixel of template r (bilinear support: a
    point reads the pixels within one pixel of it). Under an affine lens map the box holds every
    point of the pixel, so its sub-pixels can only read 0 when lit is False; the margin covers
    the map's curvature over a pixel (outside the central region, see :func:`_lensed_pixels`).

    ``padded`` (B, C, h + 2, w + 2) templates (one-pixel zero border) centred at cx, cy (B,)
    [arcsec] with 1 / pixel scale ``inv`` (B,) [1/arcsec]; lit (B, H W) bool. One summed-area
    table of the non-zero pixels per row makes each pixel's test O(1)."""
    n, c, hp, wp = padded.shape
    off_x = np.float32((wp - 1) / 2)
    off_y = np.float32((hp - 1) / 2)
    side = np.int64(np.sqrt(np.float64(lit.shape[1])) + 0.5)  # W = H
    tw = wp + 1
    table = np.zeros((hp + 1) * tw, dtype=np.int32)  # flat summed-area table of the non-zero pixels
    fx, fy = np.empty((side + 1) ** 2, np.float32), np.empty((side + 1) ** 2, np.float32)
    box = np.empty((4, side), np.int32)  # i0, i1, j0, j1 of one row of pixels
    lo_x, hi_x = np.float32(-2.0), np.float32(wp + 1)
    lo_y, hi_y = np.float32(-2.0), np.float32(hp + 1)
    for r in range(n):
        for j in range(hp):
            run = 0
            for i in range(wp):
                nz = 0
                for ch in range(c):
                    if padded[r, ch, j, i] != 0:
                        nz = 1
                run += nz
                table[(j + 1) * tw + i + 1] = table[j * tw + i + 1] + run
        cxr, cyr, ir, k = cx[r], cy[r], inv[r], margin[r]
        for q in range(len(fx)):  # corners in padded-pixel coordinates
            fx[q] = (bx[r, q] - cxr) * ir + off_x
            fy[q] = (by[r, q] - cyr) * ir + off_y
        for a in range(side):
            t0, t1 = a * (side + 1), (a + 1) * (side + 1)
            for b in range(side):  # the widened box, clamped before the int32 conversion
                x0 = min(min(fx[t0 + b], fx[t0 + b + 1]), min(fx[t1 + b], fx[t1 + b + 1])) - k
                x1 = max(max(fx[t0 + b], fx[t0 + b + 1]), max(fx[t1 + b], fx[t1 + b + 1])) + k
                y0 = min(min(fy[t0 + b], fy[t0 + b + 1]), min(fy[t1 + b], fy[t1 + b + 1])) - k
                y1 = max(max(fy[t0 + b], fy[t0 + b + 1]), max(fy[t1 + b], fy[t1 + b + 1])) + k
                box[0, b] = max(np.int32(np.floor(min(max(x0, lo_x), hi_x))), np.int32(0))
                box[1, b] = min(np.int32(np.floor(min(max(x1, lo_x), hi_x))) + np.int32(1), np.int32(wp - 1))
                box[2, b] = max(np.int32(np.floor(min(max(y0, lo_y), hi_y))), np.int32(0))
                box[3, b] = min(np.int32(np.floor(min(max(y1, lo_y), hi_y))) + np.int32(1), np.int32(hp - 1))
            for b in range(side):
                i0, i1, j0, j1 = box[0, b], box[1, b], box[2, b], box[3, b]
                lit[r, a * side + b] = i0 <= i1 and j0 <= j1 and table[(j1 + 1) * tw + i1 + 1] - \
                    table[j0 * tw + i1 + 1] - table[(j1 + 1) * tw + i0] + table[j0 * tw + i0] > 0


SEGMENT = 256  # pixels of one row whose sub-pixels are traced and read in one pass (scratch <= 64 KB at s = 8)


@kernel(inline="always")
def _bilinear(tm, hp, wp, fx, fy):
    """Bilinear value of a padded template ``tm`` ((h + 2) (w + 2),), row-major with hp = h + 2
    rows of wp = w + 2, at padded-pixel coordinates fx, fy (float32; pixel (j, i) at fx = i,
    fy = j). Coordinates are clamped onto the zero border, so every point off the template
    reads exactly 0 (lenstronomy INTERPOL). 32-bit unsigned indices: no negative-index checks."""
    fx = min(max(fx, np.float32(0.0)), np.float32(wp - 1))
    fy = min(max(fy, np.float32(0.0)), np.float32(hp - 1))
    i0 = min(np.int32(fx), np.int32(wp - 2))
    j0 = min(np.int32(fy), np.int32(hp - 2))
    tx = fx - np.float32(i0)
    ty = fy - np.float32(j0)
    q = np.uint32(j0 * np.int32(wp) + i0)
    a, b = tm[q], tm[q + np.uint32(1)]
    c, d = tm[q + np.uint32(wp)], tm[q + np.uint32(wp + 1)]
    top = (b - a) * tx + a
    bot = (d - c) * tx + c
    return (bot - top) * ty + top


@kernel(inline="always")
def _segment_end(rows, j0):
    """End of the run of at most SEGMENT entries from j0 with the same row (rows sorted)."""
    j1 = j0 + 1
    while j1 < len(rows) and rows[j1] == rows[j0] and j1 - j0 < SEGMENT:
        j1 += 1
    return j1


@kernel(inline="always")
def _segment_scratch(s2):
    """(fx, fy, vals): float32 scratch for the s2 sub-pixels of up to SEGMENT pixels."""
    return np.empty(SEGMENT * s2, np.float32), np.empty(SEGMENT * s2, np.float32), np.empty(SEGMENT * s2, np.float32)


@kernel(inline="always")
def _segment_sums(tm, hp, wp, fx, fy, vals, npix, s2, area, out, pix, j0):
    """out[pix[j0 + i]] = area x the float32 sum, in order k = 0..s2-1, of the bilinear values
    of ``tm`` at padded-pixel coordinates (fx, fy)[i s2 + k], for i < npix (``vals`` scratch)."""
    for q in range(npix * s2):
        vals[q] = _bilinear(tm, hp, wp, fx[q], fy[q])
    for i in range(npix):
        acc = np.float32(0.0)
        for k in range(s2):
            acc += vals[i * s2 + k]
        out[pix[j0 + i]] = acc * area


@kernel
def _sum_points(flat, hp, wp, cx, cy, inv, rows, pix, bx, by, area, dest, out):
    """Sub-pixel sums of given source-plane points: out[dest[rows[j]], ch, pix[j]] = area x the sum
    over k of the bilinear value of template rows[j], channel ch, at (bx, by)[k, j] [arcsec].

    ``flat`` (B, C, hp wp) padded templates [surface brightness, zero border] flattened, centred
    at cx, cy (B,) [arcsec] with 1 / pixel scale ``inv`` (B,) [1/arcsec]; rows, pix (M,) sorted
    by row; bx, by (S, M) float32; dest (B,) output rows; out (N, C, P) float32."""
    off_x, off_y = np.float32((wp - 1) / 2), np.float32((hp - 1) / 2)
    s2 = bx.shape[0]
    fx, fy, vals = _segment_scratch(s2)
    j0 = 0
    while j0 < len(rows):
        j1 = _segment_end(rows, j0)
        r = rows[j0]
        cxr, cyr, ir = cx[r], cy[r], inv[r]
        for i in range(j1 - j0):
            for k in range(s2):
                fx[i * s2 + k] = (bx[k, j0 + i] - cxr) * ir + off_x
                fy[i * s2 + k] = (by[k, j0 + i] - cyr) * ir + off_y
        for ch in range(flat.shape[1]):
            _segment_sums(flat[r, ch], hp, wp, fx, fy, vals, j1 - j0, s2, area, out[dest[r], ch], pix, j0)
        j0 = j1


@kernel
def _sum_sie_subpixels(coef, flat, hp, wp, cx, cy, inv, rows, pix, x0, y0, dx, dy, area, dest, out):
    """The fused SIE + shear path: out[dest[rows[j]], ch, pix[j]] = area x the sum over sub-pixels k of
    the bilinear template value at the source-plane position of (x0[p] + dx[k], y0[p] + dy[k])
    [arcsec], p = pix[j] (:func:`kernels.sie_source_position`, per-row ``coef``); other
    arguments as in :func:`_sum_points`. The sub-pixels of up to SEGMENT pixels of one row are
    traced in one vectorised loop, then read from the template."""
    off_x, off_y = np.float32((wp - 1) / 2), np.float32((hp - 1) / 2)
    s2 = len(dx)
    fx, fy, vals = _segment_scratch(s2)
    j0 = 0
    while j0 < len(rows):
        j1 = _segment_end(rows, j0)
        r = rows[j0]
        for i in range(j1 - j0):
            xp, yp = x0[pix[j0 + i]], y0[pix[j0 + i]]
            for k in range(s2):
                fx[i * s2 + k] = xp + dx[k]
                fy[i * s2 + k] = yp + dy[k]
        cf = sie_tuple(coef[r])  # scalars in registers: the point loop vectorises
        cxr, cyr, ir = cx[r], cy[r], inv[r]
        for q in range((j1 - j0) * s2):
            u, v = sie_source_position(cf, fx[q], fy[q])
            fx[q] = (u - cxr) * ir + off_x
            fy[q] = (v - cyr) * ir + off_y
        for ch in range(flat.shape[1]):
            _segment_sums(flat[r, ch], hp, wp, fx, fy, vals, j1 - j0, s2, area, out[dest[r], ch], pix, j0)
        j0 = j1


def render_lensed_image(lens: Dict[str, np.ndarray], templates, template_pixel_scale, fluxes, center_x, center_y,
                        psf_fwhm, *, stamp_size: int = 64, pixel_scale: float = PIXEL_SCALE_ARCSEC,
                        supersampling=4, backend: str = "fast", out: np.ndarray | None = None) -> np.ndarray:
    """Lensed image sources, float32 (B, 3, H, W) nanomaggies per pixel (g, r, z), noiseless;
    written into ``out`` when given (:func:`dhs_gen.lensing.params.output_images`).

    ``templates`` (B, S, S) shared by all bands or (B, 3, S, S) per band, flux per template
    pixel (normalised to unit sum); ``template_pixel_scale`` (B,) [arcsec/template pixel];
    ``fluxes`` (B, 3) total unlensed g, r, z flux [nanomaggies]; ``center_x/y`` (B,) template
    centre in the source plane [arcsec]; ``supersampling``: sub-pixels per side, one integer
    or one per row (B,); lens and PSF as for render_lensed_sersic.
    """
    from dhs_gen.lensing.render import validate_call

    per_row = np.asarray(supersampling)
    lens_p, n, stamp_size, _ = validate_call(backend, lens, stamp_size, pixel_scale,
                                             per_row if per_row.ndim == 0 else 1)
    if per_row.ndim == 0:
        per_row = np.full(n, int(per_row))
    elif per_row.shape != (n,):
        raise LensingInputError(f"supersampling must be an integer or one per row ({n},), got shape {per_row.shape}")
    for s in np.unique(per_row):
        validate_grid(stamp_size, pixel_scale, s)
    t, sums = template_sums(templates)
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
    shared = t.shape[1] == 1  # one shape for g, r, z: lens it once (unit flux), band fluxes in the kernels
    if shared:
        kernels = kernels * flux[:, :, None, None].astype(np.float32)  # convolution is linear; 4x fewer products
    images = output_images(out, n, stamp_size)
    pixels = np.zeros((n, t.shape[1], stamp_size * stamp_size), dtype=np.float32) if backend == "fast" else None
    per_row = per_row.astype(np.int64)
    factors = antialias_factors(geo["scale"], pixel_scale / per_row)
    for sub, factor in np.unique(np.stack([per_row, factors], axis=1), axis=0):
        rows = np.flatnonzero((per_row == sub) & (factors == factor))
        used = block_geometry(t.shape[-1], int(factor))[0]
        g_rows = {k: v[rows] for k, v in geo.items()}
        g_rows["scale"] = g_rows["scale"] * used
        row_flux = np.ones((len(rows), 1)) if shared else flux[rows]
        # unit-sum template x flux / pixel area, per row and band, applied to the block sums
        sb_scale = template_to_surface_brightness(1.0 / sums[rows], row_flux, g_rows["scale"][:, None])
        padded, _ = block_sum(t, used, rows, sb_scale, border=1)  # surface brightness, zero border
        lens_rows = {k: v[rows] for k, v in lens_p.items()}
        if backend == "lenstronomy":
            from dhs_gen.lensing.reference import render_image_reference

            images[rows] = render_image_reference(lens_rows, padded[:, :, 1:-1, 1:-1], g_rows, kernels[rows],
                                                  stamp_size, pixel_scale, int(sub))
        else:
            _lensed_pixels(lens_rows, padded, g_rows, stamp_size, pixel_scale, int(sub), rows, pixels)
    if pixels is not None:  # every row at once: full FFT batches
        pixels = pixels.reshape(n, t.shape[1], stamp_size, stamp_size)
        for start in range(0, n, FAST_CHUNK_ROWS):  # cache-sized FFT batches
            rows = slice(start, start + FAST_CHUNK_ROWS)
            if shared:  # Moffat kernels (x flux): symmetric by construction
                fast.convolve_bands(pixels[rows, 0], kernels[rows], out=images[rows], symmetric=True)
            else:
                for band in range(3):
                    fast.convolve_bands(pixels[rows, band], kernels[rows, band:band + 1],
                                        out=images[rows, band:band + 1], symmetric=True)
    return check_finite_output(images, "render_lensed_image")


TRACE_ROWS = 64  # rows whose pixel corners are traced together (bounds the (rows, (H + 1)(W + 1)) scratch)
# Widening [stamp pixels] of the box of a pixel's corner images for the bend of the lens map over
# one pixel outside fast.central_radius: <= h^2/8 |d2 beta| ~ 0.03" (h = 0.262", theta_E <= 3");
# 0.25 px = 0.066". Measured: the same pixels as no widening on 768 benchmark stamps and on 512
# with q_lens >= 0.15 and shear <= 0.4.
CURVATURE_MARGIN = 0.25


def _lensed_pixels(lens, padded, geo, stamp_size, pixel_scale, supersampling, dest, pixels):
    """pixels[dest] (M, C, H W) = the unconvolved lensed images [nmgy per pixel] of the
    surface-brightness templates ``padded`` (M, C, h + 2, w + 2) [nmgy/arcsec^2, one-pixel zero
    border] (``pixels`` zero outside the pixels written here).

    The pixel corners are ray-traced first; a pixel is integrated over sub-pixels only if the
    box of its corners' source-plane images, widened by CURVATURE_MARGIN, reaches the template's
    non-zero footprint (:func:`_lit_pixels`), or if it lies near the lens centre
    (:func:`_central_pixels`); every other pixel's sub-pixels read 0. SIE + shear lenses: one
    compiled kernel traces and reads each kept pixel's sub-pixels (:func:`_sum_sie_subpixels`);
    EPL or multipole lenses: numpy ray tracing (:func:`fast.ray_trace`) in blocks of PIXEL_BLOCK
    pixels, then :func:`_sum_points`."""
    from dhs_gen.lensing.render import PIXEL_BLOCK, _pixel_centres

    x0, y0 = _pixel_centres(stamp_size, float(pixel_scale))
    sub = fast.subpixel_offsets(supersampling, pixel_scale)
    n, c = padded.shape[:2]
    p = stamp_size * stamp_size
    cx, cy = geo["center_x"].astype(np.float32), geo["center_y"].astype(np.float32)
    inv = (1.0 / geo["scale"]).astype(np.float32)
    xc, yc = _pixel_centres(stamp_size + 1, float(pixel_scale))  # the (H + 1) x (W + 1) pixel corners
    margin = (CURVATURE_MARGIN * pixel_scale / geo["scale"]).astype(np.float32)  # in template pixels
    area = np.float32(pixel_scale**2 / supersampling**2)
    general = any(k in lens for k in ("gamma", "a3", "a4"))
    coef = None if general else sie_row_coefficients(lens)
    dx = np.broadcast_to(sub[0], (supersampling, supersampling, 1)).ravel()  # sub-pixel k: (row k // s, col k % s)
    dy = np.broadcast_to(sub[1], (supersampling, supersampling, 1)).ravel()
    for start in range(0, n, TRACE_ROWS):
        chunk = slice(start, min(start + TRACE_ROWS, n))
        m = chunk.stop - chunk.start
        lens_rows = {k: v[chunk] for k, v in lens.items()}
        frames = (cx[chunk], cy[chunk], inv[chunk])
        flat = (padded[chunk].reshape(m, c, -1), padded.shape[2], padded.shape[3])
        if general:
            bx, by = fast.ray_trace(lens_rows, xc, yc)
        else:
            bx, by = np.empty((m, len(xc)), dtype=np.float32), np.empty((m, len(xc)), dtype=np.float32)
            _sie_points(coef[chunk], xc, yc, bx, by)
        lit = np.empty((m, p), dtype=np.bool_)
        _lit_pixels(padded[chunk], *frames, margin[chunk], bx, by, lit)
        keep = lit.reshape(m, stamp_size, stamp_size) | _central_pixels(lens_rows, m, stamp_size, pixel_scale)
        rows, pix = np.nonzero(keep.reshape(m, p))
        out_rows = dest[chunk]
        if general:
            for s0 in range(0, len(rows), PIXEL_BLOCK):
                r, q = rows[s0:s0 + PIXEL_BLOCK], pix[s0:s0 + PIXEL_BLOCK]
                sbx, sby = fast.ray_trace({k: v[r] for k, v in lens_rows.items()}, x0[q] + sub[0], y0[q] + sub[1])
                _sum_points(*flat, *frames, r, q, sbx.reshape(-1, len(r)), sby.reshape(-1, len(r)), area, out_rows,
                            pixels)
        else:
            _sum_sie_subpixels(coef[chunk], *flat, *frames, rows, pix, x0, y0, dx, dy, area, out_rows, pixels)


def _central_pixels(lens, m, stamp_size, pixel_scale):
    """(m, H, W) bool: the pixels the fast engine always supersamples around the lens centre
    (:func:`fast.pixels_to_supersample` with nothing lit, :func:`fast.central_radius`): there the
    lens map bends too much over one pixel for its corners to bound it."""
    none = np.zeros((m, stamp_size, stamp_size), dtype=np.bool_)
    return fast.pixels_to_supersample(none, lens["center_x"], lens["center_y"],
                                      fast.central_radius(lens["theta_E"], pixel_scale), pixel_scale)
