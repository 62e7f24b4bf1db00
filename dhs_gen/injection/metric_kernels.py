"""Compiled kernels behind :mod:`dhs_gen.injection.metrics` (where the definitions live): the
Gaussian smoothing and square dilation that find sources, sums over pixel pairs at small lags
(noise autocovariance, aperture pair counts), and the triangle-mapping image count.

Each kernel works on one cutout or lens (a few 10^4 values, in L1/L2 cache) and allocates only
small scratch arrays. Kernels that test or compare floating-point values where the result must
equal a numpy formulation (NaN pixels, the smoothing, cross-product signs) are
:func:`dhs_gen.jit.kernel_strict` (IEEE, no fused multiply-add); the lag sums and the ray
tracing use :func:`dhs_gen.jit.kernel` (vectorised).

Results equal the numpy/scipy formulations they replace: the smoothing repeats
``scipy.ndimage.correlate1d``'s double-precision symmetric sum with its 'reflect' edges
operation by operation; pair counts are exact; lag sums differ from float64 sums by float32
rounding (~1e-7 of the variance; the former zero-padded single-precision FFTs were no closer).
"""
from __future__ import annotations

import numpy as np

from dhs_gen.jit import kernel, kernel_strict
from dhs_gen.lensing.kernels import _sie_tuple, sie_angles, sie_beta, sie_log_ratio  # noqa: F401 (_sie_tuple: the engine's row-to-registers helper)

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


@kernel
def trace_grid(coef, grid_x, grid_y, sx, sy, px, py):
    """Source-plane offsets from the source point (sx, sy) of the image-plane points (grid_x,
    grid_y) (float32 (N,)) of one lens: ``px``, ``py`` (N,) float32 = beta - (sx, sy), beta by
    :func:`dhs_gen.lensing.kernels.sie_source_position` with the lens row ``coef``, evaluated in
    the engine's three loops (angles; log ratio; beta) so that each vectorises."""
    c = _sie_tuple(coef)
    for k in range(len(grid_x)):
        px[k], py[k] = sie_angles(c, grid_x[k], grid_y[k])
    for k in range(len(grid_x)):
        py[k] = sie_log_ratio(py[k])
    for k in range(len(grid_x)):
        bx, by = sie_beta(c, grid_x[k], grid_y[k], px[k], py[k])
        px[k] = bx - sx
        py[k] = by - sy


@kernel_strict
def count_image_groups(px, py, upper_ok, lower_ok):
    """Number of groups (8-connected) of the cells of a mapped (n, n) grid (px, py) (float32, the
    source point at the origin) one of whose two triangles, allowed by ``upper_ok`` /
    ``lower_ok`` (uint8 (n-1, n-1)), contains the origin: upper (i, j), (i, j+1), (i+1, j+1) and
    lower (i, j), (i+1, j+1), (i+1, j). Inside = the three edge cross products p_a x p_b
    (float32, as numpy: two products, one difference) are all > 0 or all < 0; each edge is
    computed once and shared, a reversed edge being the exact negative."""
    n = px.shape[0]
    hit = np.zeros((n - 1, n - 1), np.uint8)
    cells = np.empty(2 * (n - 1) * (n - 1), np.int64)
    n_hit = 0
    for i in range(n - 1):
        for j in range(n - 1):
            h0 = px[i, j] * py[i, j + 1] - py[i, j] * px[i, j + 1]  # (i, j) -> (i, j+1)
            h1 = px[i + 1, j] * py[i + 1, j + 1] - py[i + 1, j] * px[i + 1, j + 1]  # (i+1, j) -> (i+1, j+1)
            v0 = px[i, j] * py[i + 1, j] - py[i, j] * px[i + 1, j]  # (i, j) -> (i+1, j)
            v1 = px[i, j + 1] * py[i + 1, j + 1] - py[i, j + 1] * px[i + 1, j + 1]  # (i, j+1) -> (i+1, j+1)
            d = px[i, j] * py[i + 1, j + 1] - py[i, j] * px[i + 1, j + 1]  # (i, j) -> (i+1, j+1)
            upper = (h0 > 0 and v1 > 0 and d < 0) or (h0 < 0 and v1 < 0 and d > 0)
            lower = (d > 0 and h1 < 0 and v0 < 0) or (d < 0 and h1 > 0 and v0 > 0)
            if (upper and upper_ok[i, j]) or (lower and lower_ok[i, j]):
                hit[i, j] = 1
                cells[n_hit] = i * (n - 1) + j
                n_hit += 1
    groups = 0
    for start in range(n_hit):  # flood fill from every hit cell not yet reached
        i0, j0 = divmod(cells[start], n - 1)
        if hit[i0, j0] != 1:
            continue
        groups += 1
        hit[i0, j0] = 2
        stack = [cells[start]]
        while len(stack):
            i, j = divmod(stack.pop(), n - 1)
            for ii in range(max(i - 1, 0), min(i + 2, n - 1)):
                for jj in range(max(j - 1, 0), min(j + 2, n - 1)):
                    if hit[ii, jj] == 1:
                        hit[ii, jj] = 2
                        stack.append(ii * (n - 1) + jj)
    return groups


@kernel_strict
def aperture_variance(aperture, acov):
    """Σ_lag C(lag) N_A(lag) [C units]: the variance of noise of autocovariance ``acov``
    (2L+1, 2L+1) float64 summed over a 0/1 uint8 (H, W) ``aperture``, N_A its :func:`pair_counts`
    (counted over its bounding box); 0 for an empty aperture, NaN where C is NaN at a lag with
    pairs."""
    h, w = aperture.shape
    r0, r1, c0, c1 = h, -1, w, -1
    for i in range(h):
        for j in range(w):
            if aperture[i, j]:
                r0, r1, c0, c1 = min(r0, i), max(r1, i), min(c0, j), max(c1, j)
    if r1 < 0:
        return 0.0
    counts = np.empty_like(acov)
    pair_counts(aperture[r0:r1 + 1, c0:c1 + 1], acov.shape[0] // 2, counts)
    var = 0.0
    for i in range(counts.shape[0]):
        for j in range(counts.shape[1]):
            var += counts[i, j] * acov[i, j]
    return var


@kernel_strict
def arc_aperture_sums(arc, fraction, acov, out):
    """Per row b of finite noiseless arcs (B, 3, H, W): ``out[b]`` = (peak of band 1 (r), number of
    pixels of the aperture A = {r >= ``fraction`` x peak} (empty unless peak > 0), Σ_A r, the
    noise variance over A (:func:`aperture_variance` with ``acov[b]``; NaN when ``acov`` has no
    rows), Σ of each band (3 columns)). Sums in float64, down the columns then across them."""
    n, _, h, w = arc.shape
    aperture = np.empty((h, w), np.uint8)
    column = np.empty(w, np.float64)
    for b in range(n):
        r = arc[b, 1]
        column[:] = -np.inf
        for i in range(h):
            for j in range(w):
                column[j] = max(column[j], np.float64(r[i, j]))
        peak = column.max()
        cut = fraction * peak
        column[:] = 0.0
        for i in range(h):
            for j in range(w):
                v = np.float64(r[i, j])
                inside = peak > 0 and v >= cut
                aperture[i, j] = inside
                column[j] += v if inside else 0.0
        out[b, 0], out[b, 1], out[b, 2] = peak, aperture.sum(), column.sum()
        out[b, 3] = aperture_variance(aperture, acov[b]) if len(acov) else np.nan
        for band in range(3):
            column[:] = 0.0
            for i in range(h):
                for j in range(w):
                    column[j] += arc[b, band, i, j]
            out[b, 4 + band] = column.sum()
