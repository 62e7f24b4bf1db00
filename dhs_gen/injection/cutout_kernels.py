"""Compiled per-cutout kernels behind the host-noise and arc-aperture metrics of
:mod:`dhs_gen.injection.metrics` (where the definitions live): order statistics, the Gaussian
smoothing and square dilation that find sources, and sums over pixel pairs at small lags.

Each kernel works on one cutout (a few 10^4 pixels, in L1/L2 cache) and allocates only small
scratch arrays. Kernels that see NaN pixels are :func:`dhs_gen.jit.kernel_strict`; the lag sums
see only finite, masked values and use :func:`dhs_gen.jit.kernel` (vectorised).

Results equal the numpy/scipy formulations they replace: medians are order statistics (the same
numbers whatever the algorithm), the smoothing repeats ``scipy.ndimage.correlate1d``'s double
precision symmetric sum with its 'reflect' edges operation by operation, and lag sums differ
from the former zero-padded single-precision FFTs only by float32 rounding (they are closer to
the exact sums).
"""
from __future__ import annotations

import numpy as np

from dhs_gen.jit import kernel, kernel_strict

F32 = np.float32


@kernel_strict
def _reflect(i, n):
    """scipy.ndimage 'reflect' index (d c b a | a b c d | d c b a) of i in 0..n-1 (|i| < n)."""
    if i < 0:
        return -i - 1
    if i >= n:
        return 2 * n - 1 - i
    return i


@kernel_strict
def _correlate_rows(x, weights, out):
    """``out[i]`` = Σ_j weights[j] x[i - R + j] along axis 0 of a float32 (H, W) image, as
    ``scipy.ndimage.correlate1d`` computes a symmetric kernel: in double precision, the centre tap
    first, then (x[i - j] + x[i + j]) w[R - j] for j = R..1, 'reflect' edges; rounded to float32."""
    h, w = x.shape
    r = len(weights) // 2
    acc = np.empty(w, np.float64)
    centre = weights[r]
    for i in range(h):
        for c in range(w):
            acc[c] = np.float64(x[i, c]) * centre
        for j in range(r, 0, -1):
            above, below, wj = _reflect(i - j, h), _reflect(i + j, h), weights[r - j]
            for c in range(w):
                acc[c] += (np.float64(x[above, c]) + np.float64(x[below, c])) * wj
        for c in range(w):
            out[i, c] = F32(acc[c])


@kernel_strict
def gaussian_smooth_transposed(x, weights):
    """The transpose (W, H) of ``scipy.ndimage.gaussian_filter(x, sigma, truncate)`` of a float32
    (H, W) image, given the filter's normalised 1-d kernel ``weights`` (float64, odd length 2R+1,
    R < min(H, W)): the same operations as scipy (axis 0, then axis 1, each rounded to float32),
    the axis-1 pass run down the columns of the transposed intermediate."""
    h, w = x.shape
    tmp = np.empty((h, w), np.float32)
    _correlate_rows(x, weights, tmp)
    out = np.empty((w, h), np.float32)
    _correlate_rows(tmp.T.copy(), weights, out)
    return out


@kernel
def dilate_square(mask, grow):
    """``mask`` (uint8 (H, W) of 0/1) dilated by a (2 grow + 1)^2 square, pixels beyond the edge
    ignored (= scipy.ndimage.maximum_filter's 'reflect'): uint8 (H, W). Rows, then columns, on a
    zero-padded copy (whole-row loops)."""
    h, w = mask.shape
    wp = w + 2 * grow
    pad = np.zeros((h + 2 * grow, wp), np.uint8)
    pad[grow:grow + h, grow:grow + w] = mask
    rows = np.zeros((h, wp), np.uint8)
    for i in range(h):
        row = rows[i]
        for d in range(2 * grow + 1):
            src = pad[i + d]
            for c in range(wp):
                row[c] = row[c] | src[c]
    out = np.zeros((h, w), np.uint8)
    for i in range(h):
        dst, src = out[i], rows[i]
        for d in range(2 * grow + 1):
            for c in range(w):
                dst[c] = dst[c] | src[c + d]
    return out


ROWS = 4  # rows summed per pass of the lag-sum loops
LANES = 32  # row length of the lag-sum buffers is a multiple of this (whole vectors, no scalar tail)


@kernel
def _mirror(out, max_lag):
    """Fill the lags dy < 0 (and dy = 0, dx < 0) of ``out`` (2L+1, 2L+1) from their mirror (-dy, -dx),
    which has the same pixel pairs."""
    for dy in range(-max_lag, 1):
        for dx in range(-max_lag, max_lag + 1):
            if dy < 0 or dx < 0:
                out[max_lag + dy, max_lag + dx] = out[max_lag - dy, max_lag - dx]


@kernel
def lag_sums(x, max_lag, out):
    """``out[L + dy, L + dx]`` = Σ x[i, j] x[i + dy, j + dx] over the pixel pairs of a finite float32
    (H, W) image at each lag |dy|, |dx| <= L = ``max_lag`` (out: (2L+1, 2L+1) float64). Products
    are summed in float32 down each column, ``ROWS`` rows at a time, the column sums in float64."""
    h, w = x.shape
    n_lag = 2 * max_lag + 1
    wv = (w + LANES - 1) // LANES * LANES
    pad = np.zeros((h + ROWS, wv + 2 * max_lag + LANES), np.float32)  # zeros: pairs leaving the image add 0
    pad[:h, max_lag:max_lag + w] = x
    acc = np.empty((n_lag, wv), np.float32)
    for dy in range(max_lag + 1):
        acc[:] = 0.0
        for i in range(0, h - dy, ROWS):
            for k in range(n_lag):
                for j in range(wv):
                    acc[k, j] += ((pad[i, max_lag + j] * pad[i + dy, k + j]
                                   + pad[i + 1, max_lag + j] * pad[i + dy + 1, k + j])
                                  + (pad[i + 2, max_lag + j] * pad[i + dy + 2, k + j]
                                     + pad[i + 3, max_lag + j] * pad[i + dy + 3, k + j]))
        for k in range(n_lag):
            total = 0.0
            for j in range(wv):
                total += acc[k, j]
            out[max_lag + dy, k] = total
    _mirror(out, max_lag)


@kernel
def pair_counts(mask, max_lag, out):
    """``out[L + dy, L + dx]`` = Σ m[i, j] m[i + dy, j + dx]: the number of pixel pairs of a 0/1
    uint8 (H, W) mask at each lag |dy|, |dx| <= L = ``max_lag`` (out: (2L+1, 2L+1) float64, exact).
    Counted in uint8 down each column, emptied into int64 every 248 rows (no overflow)."""
    h, w = mask.shape
    n_lag = 2 * max_lag + 1
    wv = (w + LANES - 1) // LANES * LANES
    pad = np.zeros((h + ROWS, wv + 2 * max_lag + LANES), np.uint8)
    pad[:h, max_lag:max_lag + w] = mask
    acc = np.empty((n_lag, wv), np.uint8)
    total = np.empty((n_lag, wv), np.int64)
    for dy in range(max_lag + 1):
        acc[:] = 0
        total[:] = 0
        for i in range(0, h - dy, ROWS):
            for k in range(n_lag):
                for j in range(wv):
                    acc[k, j] += (((pad[i, max_lag + j] & pad[i + dy, k + j])
                                   + (pad[i + 1, max_lag + j] & pad[i + dy + 1, k + j]))
                                  + ((pad[i + 2, max_lag + j] & pad[i + dy + 2, k + j])
                                     + (pad[i + 3, max_lag + j] & pad[i + dy + 3, k + j])))
            if i % 248 == 248 - ROWS:  # 62 passes of <= 4 pairs: <= 248 per column
                total += acc
                acc[:] = 0
        total += acc
        for k in range(n_lag):
            out[max_lag + dy, k] = total[k].sum()
    _mirror(out, max_lag)



@kernel_strict
def smooth_and_sample(image, weights, smooth_t, sample):
    """Smooth one float32 (H, W) image (non-finite pixels as 0) by the Gaussian ``weights``
    (:func:`gaussian_smooth_transposed`) into ``smooth_t`` (W, H), and copy the smoothed values at
    the finite pixels of every other row and column into ``sample``; their number."""
    h, w = image.shape
    x = np.empty((h, w), np.float32)
    for i in range(h):
        for c in range(w):
            v = image[i, c]
            x[i, c] = v if np.isfinite(v) else F32(0.0)
    smooth_t[:] = gaussian_smooth_transposed(x, weights)
    n = 0
    for i in range(0, h, 2):
        for c in range(0, w, 2):
            if np.isfinite(image[i, c]):
                sample[n] = smooth_t[c, i]
                n += 1
    return n


@kernel_strict
def blank_sky_autocovariance(image, smooth_t, level, cut, grow, min_blank, max_lag, out):
    """Noise autocovariance of one float32 (H, W) image on its blank sky into ``out`` (2L+1, 2L+1)
    float64, L = ``max_lag`` (the definition: :func:`dhs_gen.injection.metrics.noise_autocovariance`),
    given its smoothed transpose ``smooth_t`` (:func:`smooth_and_sample`): sources = smoothed pixels
    with smooth - ``level`` > ``cut`` (float32), dilated by ``grow``; blank = finite and not a
    source, or every finite pixel when fewer than ``min_blank`` are blank; C = :func:`lag_sums` of
    the blank pixels less their mean over the blank :func:`pair_counts`; NaN where a lag has no
    pair (all NaN without a blank pixel)."""
    h, w = image.shape
    source_t = np.empty((w, h), np.uint8)
    for c in range(w):
        for i in range(h):
            source_t[c, i] = smooth_t[c, i] - level > cut
    grown_t = dilate_square(source_t, grow)
    finite = np.empty((h, w), np.uint8)
    blank = np.empty((h, w), np.uint8)
    n_finite, n_blank = 0, 0
    for i in range(h):
        for c in range(w):
            ok = np.isfinite(image[i, c])
            finite[i, c] = ok
            blank[i, c] = ok and not grown_t[c, i]
            n_finite += finite[i, c]
            n_blank += blank[i, c]
    if n_blank < min_blank:
        blank[:] = finite
        n_blank = n_finite
    if n_blank == 0:
        out[:] = np.nan
        return
    total = 0.0
    for i in range(h):
        for c in range(w):
            if blank[i, c]:
                total += image[i, c]
    sky = F32(total / n_blank)
    x = np.empty((h, w), np.float32)
    for i in range(h):
        for c in range(w):
            x[i, c] = image[i, c] - sky if blank[i, c] else F32(0.0)
    lag_sums(x, max_lag, out)
    counts = np.empty_like(out)
    pair_counts(blank, max_lag, counts)
    for i in range(out.shape[0]):
        for c in range(out.shape[1]):
            out[i, c] = out[i, c] / counts[i, c] if counts[i, c] > 0 else np.nan
