"""Per-injection metrics from the noiseless injected light and the host's real noise.

Noise: per band, σ = 1.4826 · MAD of the host cutout's pixels at radius ≥ ``OUTER_FRACTION`` ×
cutout side from its centre (the outer annulus, mostly sky; a checkerboard half of its pixels,
~3200 for a 101-px cutout, so σ is known to ~2%), in nanomaggies per pixel.

* ``arc_snr_sum`` (r band) = Σ_A s / σ_A, A = pixels where the noiseless arc s ≥ 10% of its peak
  (the arc's aperture; sky-limited noise, host noise only) and σ_A² = Σ_lag C(lag) N_A(lag) the
  variance of the host noise summed over A: C the noise autocovariance of the host's own blank sky
  (:func:`noise_autocovariance`, lags |dx|, |dy| ≤ 6 px) and N_A(lag) the number of pixel pairs of
  A at that lag. DR10 coadd noise is correlated (resampling: lag-1 correlation 0.1-0.3), so
  σ_r √|A| (white noise) understates σ_A by ~1.6x on the real cutouts and overstated the S/N;
* ``arc_snr_max`` = max s / σ_r (the earlier pipeline's per-pixel ``arc_snr``);
* ``lensed_hlr_arcsec``: radius about the arc's light centroid enclosing half the r-band arc flux;
* ``magnification``: Σ arc_r / unlensed flux_r (stamp flux ratio with the same PSF; light falling
  outside the stamp is not counted);
* ``lensed_mag_b`` = 22.5 − 2.5 log10 Σ arc_b (AB);
* ``n_images``: images of the source centre (point-source multiplicity), by triangle mapping
  on a half-pixel image-plane grid.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Dict

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from dhs_gen.injection import metric_kernels
from dhs_gen.units import nmgy_to_mag

OUTER_FRACTION = 0.35
ARC_APERTURE_FRACTION = 0.1
MAD_TO_SIGMA = 1.4826
NOISE_MAX_LAG = 6  # [pixels]: the support of the autocorrelation of legacypipe's Lanczos-3 resampling kernel
SOURCE_SMOOTH_PIX = 1.5  # Gaussian sigma [pixels] of the smoothing that finds sources for the blank-sky mask
SOURCE_THRESHOLD = 3.0  # smoothed pixels above this many robust sigmas (of the smoothed image) are sources
SOURCE_GROW_PIX = 3  # sources grown by this many pixels (square) before the blank-sky mask is taken
MIN_BLANK_PIXELS = 1000  # fewer blank pixels: the autocovariance uses every finite pixel (larger, conservative)
HLR_WINDOWS = (24, 40)  # sides [pixels] of the squares about the centroid tried for the half-light radius


def outer_sigma(images: np.ndarray, outer_fraction: float = OUTER_FRACTION) -> np.ndarray:
    """(B, C) robust noise σ [nmgy/pixel] of host cutouts (B, C, S, S) [nmgy] from their outer
    annulus (:func:`outer_pixel_sigma` of the pixels at :func:`outer_pixel_index`).

    Non-finite pixels are ignored; a band with no finite outer pixel gets NaN.
    """
    images = np.asarray(images)
    b, c, h, size = images.shape
    if h != size:
        raise ValueError(f"outer_sigma: cutouts must be square, got {h} x {size}")
    index, _ = outer_pixel_index(size, outer_fraction)
    return outer_pixel_sigma(images.reshape(b, c, h * size)[..., index].astype(np.float32, copy=False))


def outer_pixel_sigma(pix: np.ndarray) -> np.ndarray:
    """(B, C) σ [nmgy/pixel] = 1.4826 MAD of each band's outer-annulus pixels ``pix`` (B, C, n)
    float32 [nmgy] (the pixels at :func:`outer_pixel_index` of each cutout; sorted in place),
    non-finite pixels ignored, NaN for a band without a finite one: the σ of :func:`outer_sigma`."""
    pix.sort(axis=-1)  # -inf first, +inf and NaN last: a row is finite if its two ends are
    finite = (np.isfinite(pix[..., 0]) & np.isfinite(pix[..., -1])).all(axis=-1)
    out = np.empty(pix.shape[:2])
    if finite.all():
        out[:] = MAD_TO_SIGMA * _sorted_mad(pix)[1]
        return out
    if finite.any():
        out[finite] = MAD_TO_SIGMA * _sorted_mad(pix[finite])[1]
    p = pix[~finite]
    with np.errstate(all="ignore"):
        mad = np.nanmedian(np.abs(p - np.nanmedian(p, axis=-1, keepdims=True)), axis=-1)
    out[~finite] = MAD_TO_SIGMA * mad
    return out


@lru_cache(maxsize=8)
def outer_pixel_index(size: int, outer_fraction: float = OUTER_FRACTION):
    """(flat indices (n,), ascending, of a (size, size) cutout's outer-annulus checkerboard pixels
    (an odd count n), row starts (size + 1,): row i's indices are ``index[start[i]:start[i + 1]]``)."""
    axis = np.arange(size) - (size - 1) / 2.0
    outer = np.hypot(axis[None, :], axis[:, None]) >= outer_fraction * size
    outer &= (np.arange(size)[None, :] + np.arange(size)[:, None]) % 2 == 0  # checkerboard: half the pixels
    index = np.flatnonzero(outer)
    index = index[: len(index) - (1 - len(index) % 2)]  # an odd count: the median is one order statistic
    start = np.searchsorted(index, np.arange(size + 1) * size)
    for a in (index, start):
        a.flags.writeable = False
    return index, start


def _mad(values: np.ndarray):
    """(median, median absolute deviation from it) along the last axis of an odd-length float array.

    Sorts ``values`` in place (numpy's vectorised sort), then takes both order statistics from the
    sorted rows (:func:`_sorted_mad`); each median is one order statistic, so the result does not
    depend on the order of the values."""
    values.sort(axis=-1)
    return _sorted_mad(values)


def _sorted_mad(values: np.ndarray):
    """:func:`_mad` of an array already sorted along its last axis
    (:func:`dhs_gen.injection.metric_kernels.sorted_median_mad`: the same values as partitioning
    the array and then its deviations)."""
    rows = np.ascontiguousarray(values).reshape(-1, values.shape[-1])
    median, mad = np.empty(len(rows), values.dtype), np.empty(len(rows), values.dtype)
    metric_kernels.sorted_median_mad(rows, median, mad)
    return median.reshape(values.shape[:-1]), mad.reshape(values.shape[:-1])


def _median_and_mad(values: np.ndarray, counts: np.ndarray):
    """(median, MAD about it) (B,) float32 of the first ``counts[b]`` values of each row of a
    float32 (B, N) array, as ``np.median`` (an even count: the mean of the two middle values; no
    value: NaN). Rows with all N values (N odd) are sorted together (:func:`_mad`, in place)."""
    batched = counts == values.shape[1] if values.shape[1] % 2 else np.zeros(len(values), bool)
    if batched.all():
        return _mad(values)
    med, mad = np.full(len(values), np.nan, np.float32), np.full(len(values), np.nan, np.float32)
    if batched.any():
        med[batched], mad[batched] = _mad(values[batched])
    for b in np.flatnonzero(~batched & (counts > 0)):
        v = values[b, :counts[b]]
        med[b] = np.median(v)
        mad[b] = np.median(np.abs(v - med[b]))
    return med, mad


@lru_cache(maxsize=1)
def _source_smoothing_weights() -> np.ndarray:
    """The normalised 1-d Gaussian of ``SOURCE_SMOOTH_PIX`` truncated at 3 σ, computed as
    ``scipy.ndimage.gaussian_filter(..., truncate=3.0)`` does (same float64 numbers)."""
    radius = int(3.0 * SOURCE_SMOOTH_PIX + 0.5)
    x = np.arange(-radius, radius + 1)
    phi = np.exp(np.polynomial.Polynomial([0, 0, -0.5 / (SOURCE_SMOOTH_PIX * SOURCE_SMOOTH_PIX)])(x), dtype=np.float64)
    phi /= phi.sum()
    if radius != metric_kernels.SMOOTH_RADIUS:  # the kernels unroll a fixed number of taps
        raise RuntimeError(f"SOURCE_SMOOTH_PIX gives {radius} taps either side; metric_kernels.SMOOTH_RADIUS is "
                           f"{metric_kernels.SMOOTH_RADIUS}")
    phi.flags.writeable = False
    return phi


def noise_autocovariance(images, max_lag: int = NOISE_MAX_LAG) -> np.ndarray:
    """(B, 2L+1, 2L+1) noise autocovariance C(dy, dx) [nmgy²] of B single-band host cutouts (H, W)
    (an array (B, H, W) or a sequence of arrays) on their blank sky, lags |dy|, |dx| ≤ L =
    ``max_lag`` pixels (centre = zero lag = variance).

    Blank sky = finite pixels away from sources: the image (non-finite pixels as 0) smoothed by a
    Gaussian of ``SOURCE_SMOOTH_PIX`` (truncated at 3 σ, scipy 'reflect' edges) is above
    ``SOURCE_THRESHOLD`` x its own robust σ (1.4826 MAD) about its median (both over the finite
    pixels of every other row and column), grown by ``SOURCE_GROW_PIX`` (square). C(lag) = Σ m x
    m' x' / Σ m m' over pixel pairs at that lag, x the image less its blank-sky mean, m the mask
    (direct sums: products in float32, exact pair counts; :mod:`dhs_gen.injection.metric_kernels`).
    A cutout with fewer than ``MIN_BLANK_PIXELS`` blank pixels uses all its finite pixels. Rows
    without any finite pixel get NaN.
    """
    n_lag = 2 * max_lag + 1
    out = np.empty((len(images), n_lag, n_lag))
    if not len(images):
        return out
    weights = _source_smoothing_weights()
    images = [np.ascontiguousarray(image, dtype=np.float32) for image in images]
    h, w = images[0].shape
    if any(image.shape != (h, w) for image in images) or min(h, w) <= len(weights) // 2:
        raise ValueError("noise_autocovariance: cutouts must share one shape, larger than the smoothing kernel")
    smooth = np.empty((len(images), h, w), np.float32)
    sample = np.empty((len(images), ((h + 1) // 2) * ((w + 1) // 2)), np.float32)
    counts = np.array([metric_kernels.smooth_and_sample(image, weights, smooth[b], sample[b])
                       for b, image in enumerate(images)])
    level, mad = _median_and_mad(sample, counts)
    cut = np.float32(SOURCE_THRESHOLD * MAD_TO_SIGMA) * mad
    for b, image in enumerate(images):
        metric_kernels.blank_sky_autocovariance(image, smooth[b], level[b], cut[b], SOURCE_GROW_PIX,
                                                MIN_BLANK_PIXELS, max_lag, out[b])
    return out


def _sigma_from_variance(var: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return np.where(var > 0, np.sqrt(np.where(var > 0, var, 0.0)), np.nan)


def arc_metrics(arc: np.ndarray, sigma_r: np.ndarray, src_flux_r: np.ndarray,
                pixel_scale: float, noise_acov_r: np.ndarray | None = None) -> Dict[str, np.ndarray]:
    """Metrics of noiseless arcs (B, 3, H, W) [nmgy] given the r-band host σ (B,) [nmgy/pixel] and
    its noise autocovariance ``noise_acov_r`` (B, 2L+1, 2L+1) [nmgy²] (:func:`noise_autocovariance`
    of the host's r band; None = white noise of σ_r, right only for uncorrelated pixels).
    Aperture, sums and its noise variance in one compiled pass over the rows
    (:func:`dhs_gen.injection.metric_kernels.arc_aperture_sums`, float64 sums)."""
    arc = np.asarray(arc)
    arc = np.ascontiguousarray(arc, dtype=arc.dtype if arc.dtype in (np.float32, np.float64) else np.float64)
    acov = np.empty((0, 1, 1)) if noise_acov_r is None else np.ascontiguousarray(noise_acov_r, dtype=np.float64)
    sums = np.empty((len(arc), 7))
    metric_kernels.arc_aperture_sums(arc, ARC_APERTURE_FRACTION, acov, sums)
    peak, n_ap, signal, var, totals = sums[:, 0], sums[:, 1], sums[:, 2], sums[:, 3], sums[:, 4:]
    if noise_acov_r is None:
        sigma_ap = np.asarray(sigma_r, dtype=np.float64) * np.sqrt(n_ap)
    else:
        sigma_ap = _sigma_from_variance(var)
    with np.errstate(divide="ignore", invalid="ignore"):
        snr_sum = np.where(n_ap > 0, signal / sigma_ap, 0.0)
        snr_max = np.maximum(peak, 0.0) / sigma_r
        mags = nmgy_to_mag(np.where(totals > 0, totals, np.nan))
        magnification = totals[:, 1] / src_flux_r
    return {"arc_snr_sum": snr_sum, "arc_snr_max": snr_max, "magnification": magnification,
            "lensed_hlr_arcsec": half_light_radius(arc[:, 1]) * pixel_scale,
            **{f"lensed_mag_{b}": mags[:, i] for i, b in enumerate("grz")}}


def half_light_radius(images: np.ndarray) -> np.ndarray:
    """(B,) radius [pixels] about each image's light centroid enclosing half its (positive) flux.

    The radius is that of the pixel at which the flux summed in order of radius first reaches
    half the total. Sorting only the pixels of a square about the centroid gives the same sum and
    pixel whenever that pixel is closer than every pixel outside the square, so rows try the
    ``HLR_WINDOWS`` squares before the whole image.
    """
    total, cx, cy = light_centroid(images)
    b, h, w = np.shape(images)
    hlr = np.full(b, np.nan)
    todo = np.flatnonzero(total > 0)
    for side in (*HLR_WINDOWS, max(h, w)):
        if len(todo):
            hlr[todo] = _half_flux_radius(images, todo, 0.5 * total[todo], cx[todo], cy[todo], side)
            todo = todo[np.isnan(hlr[todo])]
    return hlr


def light_centroid(images: np.ndarray):
    """(total positive flux (B,), centroid column cx (B,), row cy (B,) [pixels]) of images
    (B, H, W) (flux = max(pixel, 0), summed in float64 by
    :func:`dhs_gen.injection.metric_kernels.light_moments`); the centroid of an image without
    positive flux is (0, 0)."""
    moments = np.empty((len(images), 3))
    metric_kernels.light_moments(np.asarray(images), moments)
    total = moments[:, 0]
    safe = np.where(total > 0, total, 1.0)
    return total, moments[:, 1] / safe, moments[:, 2] / safe


def _half_flux_radius(images: np.ndarray, todo: np.ndarray, half: np.ndarray, cx: np.ndarray, cy: np.ndarray,
                      side: int) -> np.ndarray:
    """(len(todo),) radius [pixels] at which the positive flux of ``images[todo]`` summed in order
    of radius about (cx, cy) [pixels] first reaches ``half``, from the pixels of a ``side`` square
    about (cx, cy); NaN where a pixel outside the square could come first."""
    _, h, w = images.shape
    sh, sw = min(side, h), min(side, w)
    r0 = np.clip(np.rint(cy).astype(np.int64) - sh // 2, 0, h - sh)  # the square's first row, column
    c0 = np.clip(np.rint(cx).astype(np.int64) - sw // 2, 0, w - sw)
    rows, cols = r0[:, None] + np.arange(sh), c0[:, None] + np.arange(sw)
    window = sliding_window_view(images, (sh, sw), axis=(1, 2))[todo, r0, c0].reshape(len(todo), -1)
    window = np.clip(window, 0.0, None).astype(np.float64, copy=False)
    radius = np.hypot(cols[:, None, :] - cx[:, None, None], rows[:, :, None] - cy[:, None, None])
    radius = radius.reshape(len(todo), -1)
    order = np.argsort(radius, axis=1)
    cum = np.cumsum(np.take_along_axis(window, order, axis=1), axis=1)
    reached = cum >= half[:, None]
    k = np.argmax(reached, axis=1)
    i = np.arange(len(todo))
    hlr = radius[i, order[i, k]]
    # every pixel outside the square is at least as far as the nearest outside row or column
    outside = np.minimum(_outside_distance(r0, sh, h, cy), _outside_distance(c0, sw, w, cx))
    return np.where(reached[i, k] & (hlr < outside), hlr, np.nan)


def _outside_distance(start: np.ndarray, length: int, n: int, centre: np.ndarray) -> np.ndarray:
    """(B,) |index − centre| [pixels] of the indices next to [start, start + length) within 0..n−1
    (inf where there are none); farther indices are at least as far."""
    before = np.where(start > 0, np.abs((start - 1) - centre), np.inf)
    after = np.where(start + length < n, np.abs((start + length) - centre), np.inf)
    return np.minimum(before, after)


def count_images(lens: Dict[str, np.ndarray], src_x: np.ndarray, src_y: np.ndarray, step: float = 0.1,
                 extent: float = 2.5) -> np.ndarray:
    """(B,) number of image-plane positions mapping onto each source centre (x, y) [arcsec].

    The lens equation of SIE + shear is scale-free, so positions are measured in units of θ_E
    (grid ± ``extent`` θ_E about the lens centre, spacing ``step`` θ_E). Triangle mapping: each
    grid cell's two triangles are mapped to the source plane (float32,
    :func:`dhs_gen.lensing.kernels.sie_source_position`) and those containing the source point are
    counted, cells linked within one cell (a fold across a critical curve next to an image)
    counting once. Triangles with a vertex within 0.2 θ_E of the lens centre are skipped (the
    singular SIE core has no image but maps onto a large source-plane triangle). One compiled
    pass per lens (:func:`dhs_gen.injection.metric_kernels.count_image_groups`).
    """
    from dhs_gen.lensing.kernels import sie_row_coefficients

    theta = np.asarray(lens["theta_E"], dtype=np.float64)
    grid_x, grid_y, upper_ok, lower_ok = _image_grid(step, extent)
    n_side = len(upper_ok) + 1
    cx, cy = np.asarray(lens["center_x"]) / theta, np.asarray(lens["center_y"]) / theta
    g1, g2 = np.asarray(lens["gamma1"], dtype=np.float64), np.asarray(lens["gamma2"], dtype=np.float64)
    unit = {"theta_E": np.ones_like(theta), "e1": np.asarray(lens["e1"], dtype=np.float64),
            "e2": np.asarray(lens["e2"], dtype=np.float64), "center_x": np.zeros_like(theta),
            "center_y": np.zeros_like(theta), "gamma1": g1, "gamma2": g2}
    coef = sie_row_coefficients(unit)
    # shear acts about the stamp origin: shift it into the source offset of a centred lens
    sx = (np.asarray(src_x) / theta - cx + (g1 * cx + g2 * cy)).astype(np.float32)
    sy = (np.asarray(src_y) / theta - cy + (g2 * cx - g1 * cy)).astype(np.float32)
    px, py = np.empty((2, n_side * n_side), np.float32)
    out = np.zeros(len(theta), dtype=np.int64)
    for b in range(len(theta)):
        metric_kernels.trace_grid(coef[b], grid_x, grid_y, sx[b], sy[b], px, py)
        out[b] = metric_kernels.count_image_groups(px.reshape(n_side, n_side), py.reshape(n_side, n_side),
                                                   upper_ok, lower_ok)
    return out


@lru_cache(maxsize=4)
def _image_grid(step: float, extent: float):
    """(grid x, y (n²,) float32 [θ_E] (row-major, x along rows), upper_ok, lower_ok uint8
    (n-1, n-1)) of :func:`count_images`: whether each cell's upper (i, j), (i, j+1), (i+1, j+1) and lower (i, j), (i+1, j+1), (i+1, j)
    triangle keeps all its vertices at ≥ 0.2 θ_E from the lens centre."""
    n_side = int(np.ceil(2 * extent / step)) + 1
    axis = (np.arange(n_side) - (n_side - 1) / 2.0) * step
    near = np.hypot(axis[None, :], axis[:, None]) < 0.2
    upper_ok = ~(near[:-1, :-1] | near[:-1, 1:] | near[1:, 1:])
    lower_ok = ~(near[:-1, :-1] | near[1:, 1:] | near[1:, :-1])
    gx, gy = (g.ravel().astype(np.float32) for g in np.meshgrid(axis, axis))
    grid = (gx, gy, upper_ok.astype(np.uint8), lower_ok.astype(np.uint8))
    for a in grid:
        a.flags.writeable = False
    return grid
