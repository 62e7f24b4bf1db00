"""Render sky objects into a cutout: Sersic profiles convolved with the PSF, point sources as
shifted PSFs, bright-star halos. Pure numpy; fluxes in nanomaggies, output nanomaggies/pixel.

Pixel convention (as the Legacy Surveys FITS cutouts read with numpy): row index increases to
the north (+dec), column index increases to the west (-ra), the requested position sits at the
centre pixel (size // 2, size // 2). Tractor ellipticities (e1, e2) give the axis ratio
q = (1 - e) / (1 + e) and position angle theta = atan2(e2, e1) / 2 east of north.
"""
from __future__ import annotations

import numpy as np

from dhs_gen import PIXEL_SCALE_ARCSEC
from dhs_gen.psf import convolve_same
from dhs_gen.survey.sky import PSF

_MAX_WINDOW = 64  # half-size [px] of the window a galaxy profile is evaluated in


def sersic_bn(n):
    """b_n of the Sersic profile (Ciotti & Bertin 1999 expansion), valid for n >= 0.36."""
    n = np.asarray(n, dtype=np.float64)
    return 2.0 * n - 1.0 / 3.0 + 4.0 / (405.0 * n) + 46.0 / (25515.0 * n**2)


def sky_to_pixel(ra, dec, ra0: float, dec0: float, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(column x, row y) pixel coordinates of (ra, dec) in a cutout centred on (ra0, dec0)
    (gnomonic projection, 0.262"/px, north up / east left)."""
    ra_r, dec_r = np.radians(np.asarray(ra, dtype=np.float64)), np.radians(np.asarray(dec, dtype=np.float64))
    ra0_r, dec0_r = np.radians(ra0), np.radians(dec0)
    cosc = np.sin(dec0_r) * np.sin(dec_r) + np.cos(dec0_r) * np.cos(dec_r) * np.cos(ra_r - ra0_r)
    xi = np.cos(dec_r) * np.sin(ra_r - ra0_r) / cosc
    eta = (np.cos(dec0_r) * np.sin(dec_r) - np.sin(dec0_r) * np.cos(dec_r) * np.cos(ra_r - ra0_r)) / cosc
    scale = np.degrees(1.0) * 3600.0 / PIXEL_SCALE_ARCSEC
    centre = size // 2
    return centre - xi * scale, centre + eta * scale


def sersic_window(x0: float, y0: float, shape_r_pix: float, e1: float, e2: float, n: float,
                  shape: tuple[int, int]) -> tuple[slice, slice, np.ndarray] | None:
    """A unit-flux Sersic profile integrated over pixels (sub-sampled), truncated at
    8 half-light radii (Tractor-like), on the window of ``shape`` it overlaps: (rows, cols, image)."""
    half = int(np.clip(np.ceil(8.0 * shape_r_pix), 4, _MAX_WINDOW))
    xc, yc = int(np.round(x0)), int(np.round(y0))
    r0, r1 = max(yc - half, 0), min(yc + half + 1, shape[0])
    c0, c1 = max(xc - half, 0), min(xc + half + 1, shape[1])
    if r0 >= r1 or c0 >= c1:
        return None
    sub = 5 if shape_r_pix < 2.0 else 3 if shape_r_pix < 6.0 else 1
    offs = (np.arange(sub) + 0.5) / sub - 0.5
    ys = (np.arange(r0, r1)[:, None] + offs[None, :]).ravel() - y0
    xs = (np.arange(c0, c1)[:, None] + offs[None, :]).ravel() - x0
    e = min(np.hypot(e1, e2), 0.95)
    q = (1.0 - e) / (1.0 + e)
    theta = 0.5 * np.arctan2(e2, e1)
    # major axis along (east, north) = (sin theta, cos theta) -> (col, row) = (-sin theta, cos theta)
    ux, uy = -np.sin(theta), np.cos(theta)
    a = xs[None, :] * ux + ys[:, None] * uy
    b = -xs[None, :] * uy + ys[:, None] * ux
    r_ell = np.sqrt(a * a + (b / q) ** 2)
    re = max(shape_r_pix, 1e-3)
    n = float(np.clip(n, 0.36, 8.0))
    prof = np.exp(-sersic_bn(n) * ((r_ell / re) ** (1.0 / n) - 1.0))
    prof[r_ell > 8.0 * re] = 0.0
    if sub > 1:
        prof = prof.reshape(r1 - r0, sub, c1 - c0, sub).mean(axis=(1, 3))
    total = prof.sum()
    if not np.isfinite(total) or total <= 0:
        return None
    return slice(r0, r1), slice(c0, c1), prof / total


def add_stamp(canvas: np.ndarray, stamp: np.ndarray, fluxes: np.ndarray, yc: int, xc: int) -> None:
    """Add ``fluxes[c] * stamp`` (odd-sized, centred at pixel (yc, xc)) to canvas (C, H, W), clipped."""
    h = stamp.shape[0] // 2
    H, W = canvas.shape[-2:]
    r0, r1 = yc - h, yc + h + 1
    c0, c1 = xc - h, xc + h + 1
    sr0, sc0 = max(0, -r0), max(0, -c0)
    sr1, sc1 = stamp.shape[0] - max(0, r1 - H), stamp.shape[1] - max(0, c1 - W)
    if sr0 >= sr1 or sc0 >= sc1:
        return
    canvas[:, max(r0, 0):min(r1, H), max(c0, 0):min(c1, W)] += fluxes[:, None, None] * stamp[None, sr0:sr1, sc0:sc1]


def halo_profile(dx: np.ndarray, dy: np.ndarray, r_h_pix: float = 12.0, beta: float = 1.6) -> np.ndarray:
    """Unit-flux (over the infinite plane) power-law halo (1 + r^2/r_h^2)^-beta per pixel."""
    r2 = (dx * dx + dy * dy) / r_h_pix**2
    return (beta - 1.0) / (np.pi * r_h_pix**2) * (1.0 + r2) ** (-beta)


def render_scene(objects: dict, ra0: float, dec0: float, size: int, psf, halo_frac: float = 0.04,
                 halo_flux_min: float = 300.0, arcs=()) -> np.ndarray:
    """Noise-free (3, size, size) float32 image [nmgy/px] of ``objects`` (columns as in
    :mod:`dhs_gen.survey.sky`) seen through ``psf`` (an object with ``kernels`` (3, S, S) and
    ``shifted(band, dx, dy)`` -> (S, S) unit-sum PSF centred at sub-pixel offset (dx, dy)).
    ``arcs``: unconvolved lensed images (row, col, image (S, S), fluxes (3,), ...) as from
    :func:`dhs_gen.survey.lenses.arc_stamps`, added before the PSF convolution."""
    kernels = psf.kernels
    pad = kernels.shape[-1] // 2
    full = size + 2 * pad
    x, y = sky_to_pixel(objects["ra"], objects["dec"], ra0, dec0, size)
    x, y = x + pad, y + pad
    fluxes = np.stack([objects["flux_g"], objects["flux_r"], objects["flux_z"]], axis=1).astype(np.float64)
    point = objects["type"] == PSF
    galaxies = np.zeros((3, full, full), dtype=np.float64)
    for i in np.flatnonzero(~point):
        win = sersic_window(x[i], y[i], objects["shape_r"][i] / PIXEL_SCALE_ARCSEC, objects["shape_e1"][i],
                            objects["shape_e2"][i], objects["sersic"][i], (full, full))
        if win is not None:
            rows, cols, prof = win
            galaxies[:, rows, cols] += fluxes[i][:, None, None] * prof[None]
    for row, col, arc, arc_fluxes, *_ in arcs:
        add_stamp(galaxies, arc, np.asarray(arc_fluxes, dtype=np.float64), row + pad, col + pad)
    image = _convolve_bands(galaxies, kernels)
    image = image[:, pad:pad + size, pad:pad + size].astype(np.float64)
    xs, ys = x - pad, y - pad
    yy, xx = np.mgrid[0:size, 0:size]
    for i in np.flatnonzero(point):
        xc, yc = int(np.round(xs[i])), int(np.round(ys[i]))
        dx, dy = xs[i] - xc, ys[i] - yc
        for c in range(3):
            add_stamp(image[c:c + 1], psf.shifted(c, dx, dy), fluxes[i, c:c + 1], yc, xc)
        if fluxes[i, 1] > halo_flux_min:
            image += halo_frac * fluxes[i][:, None, None] * halo_profile(xx - xs[i], yy - ys[i])[None]
    return image.astype(np.float32)


def _convolve_bands(images: np.ndarray, kernels: np.ndarray) -> np.ndarray:
    return np.stack([convolve_same(images[c].astype(np.float32), kernels[c]) for c in range(images.shape[0])])
