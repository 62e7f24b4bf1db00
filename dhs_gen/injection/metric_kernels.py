"""Compiled kernels behind :mod:`dhs_gen.injection.metrics` (where the definitions live): the
Gaussian smoothing and square dilation that find sources on a host cutout, sums over pixel pairs
at small lags (noise autocovariance, aperture pair counts), the arc aperture sums and light
moments, the triangle-mapping image count, and the host crop (with its bad-pixel count) and
outer-annulus pixels read in one pass.

Each kernel works on one cutout or lens at a time (a few 10^4 values, in L1/L2 cache; the batched
ones, :func:`arc_aperture_sums`, :func:`light_moments` and :func:`sorted_median_mad`, loop over
their rows) and allocates only small scratch arrays. Kernels that test or compare floating-point
values where the result must equal a numpy formulation (NaN pixels, the smoothing, cross-product
signs) are :func:`dhs_gen.jit.kernel_strict` (IEEE, no fused multiply-add); the lag sums and the ray
tracing use :func:`dhs_gen.jit.kernel` (vectorised). Masks are uint64 row bitsets where they are
dilated or counted in pairs (:func:`pack_rows`, :func:`popcount`).

Results equal the numpy/scipy formulations they replace: the smoothing repeats
``scipy.ndimage.correlate1d``'s double-precision symmetric sum with its 'reflect' edges
operation by operation; dilation and pair counts are exact; lag sums differ from float64 sums by
float32 rounding (~1e-7 of the variance; the former zero-padded single-precision FFTs were no
closer); other sums are float64 in a fixed order (down columns, then across).
"""
from __future__ import annotations

import numpy as np
from numba import types
from numba.extending import intrinsic

from dhs_gen.jit import kernel, kernel_strict
from dhs_gen.lensing.kernels import (
    prefer_512_bit_vectors,
    sie_angles,
    sie_beta,
    sie_log_ratio,
    sie_tuple,
)

F32 = np.float32
U64 = np.uint64


@intrinsic
def popcount(typingctx, x):
    """The number of set bits of a uint64 (LLVM ctpop: one instruction, vectorised)."""
    if x != types.uint64:
        return None

    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])

    return types.uint64(types.uint64), codegen


@kernel
def pack_rows(mask):
    """(H, W) 0/1 uint8 -> (H, ceil(W / 64) + 1) uint64 row bitsets (bit j of a row = column j; one
    spare zero word per row, so that shifted reads stay in the row). Each word ORs its (up to) 64
    pixels shifted into place: a loop without branches over a row slice, which vectorises."""
    h, w = mask.shape
    nw = (w + 63) // 64
    bits = np.zeros((h, nw + 1), np.uint64)
    for i in range(h):
        row = mask[i]
        for k in range(nw):
            part = row[64 * k:min(64 * k + 64, w)]
            word = U64(0)
            for q in range(len(part)):
                word |= U64(part[q]) << U64(q)
            bits[i, k] = word
    return bits


@kernel_strict
def _reflect(i, n):
    """scipy.ndimage 'reflect' index (d c b a | a b c d | d c b a) of i in 0..n-1 (|i| < n)."""
    if i < 0:
        return -i - 1
    if i >= n:
        return 2 * n - 1 - i
    return i


SMOOTH_RADIUS = 5  # taps either side of the source-finding Gaussian (1.5 px truncated at 3 sigma; metrics checks)


@kernel_strict
def _correlate_axis0(x, weights, out):
    """``out[i]`` = Σ_j weights[j] x[i - R + j] along axis 0 of a float32 (H, W) image, R =
    ``SMOOTH_RADIUS``, as ``scipy.ndimage.correlate1d`` computes a symmetric kernel: in double
    precision, the centre tap first, then (x[i - j] + x[i + j]) w[R - j] for j = R..1, 'reflect'
    edges; rounded to float32. (R is a compile-time constant: the tap loop unrolls and the column
    loop vectorises.)"""
    h, w = x.shape
    r = SMOOTH_RADIUS
    centre = weights[r]
    for i in range(h):
        for c in range(w):
            acc = np.float64(x[i, c]) * centre
            for j in range(r, 0, -1):
                acc += (np.float64(x[_reflect(i - j, h), c]) + np.float64(x[_reflect(i + j, h), c])) * weights[r - j]
            out[i, c] = F32(acc)


@kernel_strict
def _correlate_axis1(x, weights, out):
    """:func:`_correlate_axis0` along axis 1 (each row copied into a double-precision line with its
    'reflect' edges)."""
    h, w = x.shape
    r = SMOOTH_RADIUS
    centre = weights[r]
    line = np.empty(w + 2 * r, np.float64)
    for i in range(h):
        for c in range(w):
            line[r + c] = x[i, c]
        for c in range(r):
            line[r - 1 - c] = x[i, c]
            line[w + r + c] = x[i, w - 1 - c]
        for c in range(w):
            acc = line[r + c] * centre
            for j in range(r, 0, -1):
                acc += (line[r + c - j] + line[r + c + j]) * weights[r - j]
            out[i, c] = F32(acc)


@kernel_strict
def gaussian_smooth(x, weights, out):
    """``out`` = ``scipy.ndimage.gaussian_filter(x, sigma, truncate)`` of a float32 (H, W) image, H,
    W > ``SMOOTH_RADIUS``, given the filter's normalised 1-d kernel ``weights`` (float64, 2R+1
    taps): the same operations as scipy (axis 0, then axis 1, each rounded to float32), bit for bit."""
    tmp = np.empty(x.shape, np.float32)
    _correlate_axis0(x, weights, tmp)
    _correlate_axis1(tmp, weights, out)


@kernel
def dilate_bits(bits, width, grow):
    """Row bitsets (H, nw) (:func:`pack_rows`, ``width`` columns) dilated by a (2 grow + 1)^2
    square, pixels beyond the edge ignored (= scipy.ndimage.maximum_filter's 'reflect'): each word
    OR'ed over ±grow rows, then with itself moved by 1..grow columns either way (carrying bits
    across words); bits beyond ``width`` stay 0. 0 < grow < 64."""
    h, nw = bits.shape
    rows = np.empty((h, nw), np.uint64)
    for i in range(h):
        lo, hi = max(i - grow, 0), min(i + grow + 1, h)
        for k in range(nw):
            v = U64(0)
            for ii in range(lo, hi):
                v |= bits[ii, k]
            rows[i, k] = v
    out = np.empty((h, nw), np.uint64)
    for i in range(h):
        for k in range(nw):
            word = rows[i, k]
            below = rows[i, k - 1] if k > 0 else U64(0)
            above = rows[i, k + 1] if k + 1 < nw else U64(0)
            v = word
            for d in range(1, grow + 1):
                s, t = U64(d), U64(64 - d)
                v |= (word >> s) | (above << t) | (word << s) | (below >> t)
            out[i, k] = v
    last = (U64(1) << U64(width & 63)) - U64(1)  # clear what moved past the last column
    for i in range(h):
        out[i, width >> 6] &= last
        for k in range((width >> 6) + 1, nw):
            out[i, k] = 0
    return out


@kernel
def _mirror(out, max_lag):
    """Fill the lags dy < 0 (and dy = 0, dx < 0) of ``out`` (2L+1, 2L+1) from their mirror (-dy, -dx),
    which has the same pixel pairs."""
    for dy in range(-max_lag, 1):
        for dx in range(-max_lag, max_lag + 1):
            if dy < 0 or dx < 0:
                out[max_lag + dy, max_lag + dx] = out[max_lag - dy, max_lag - dx]


ROWS = 8  # image rows per product sum of the lag-sum loop (the unrolled tree in _rows_dot)
LAG_ROWS = 7  # row lags dy summed per pass (the seven statements in lag_sums: each loaded row feeds several)
STRIP = 128  # columns per strip of lag_sums (a wider image is summed strip by strip)
STRIDE = 160  # row stride [floats] of lag_sums' padded buffer: a compile-time constant, so the compiler
# sees every row access of the loop as one base plus constant offsets (one vector loop, no gathers)
MAX_SUM_LAG = (STRIDE - STRIP) // 2  # the largest max_lag lag_sums takes


@kernel(inline="always")
def _rows_dot(a, b, ja, jb):
    """Σ_r a[ja + r S] b[jb + r S] over r < ``ROWS`` (S = ``STRIDE``: the same column of successive
    buffer rows), as a fixed float32 tree of pairwise sums."""
    s = STRIDE
    return (((a[ja] * b[jb] + a[ja + s] * b[jb + s])
             + (a[ja + 2 * s] * b[jb + 2 * s] + a[ja + 3 * s] * b[jb + 3 * s]))
            + ((a[ja + 4 * s] * b[jb + 4 * s] + a[ja + 5 * s] * b[jb + 5 * s])
               + (a[ja + 6 * s] * b[jb + 6 * s] + a[ja + 7 * s] * b[jb + 7 * s])))


@kernel
def _fill_strip(x, c0, max_lag, pad):
    """Copy the columns c0 - ``max_lag`` .. c0 + ``STRIP`` + ``max_lag`` of a float32 (H, W) image
    (those that exist) into ``pad`` (rows of ``STRIDE``, column c at c - c0 + ``max_lag``), zeros
    elsewhere. Each row is written through a slice, so that every index is provably >= 0 and the
    copies are plain vector moves (an offset index would compile to scatter stores)."""
    h, w = x.shape
    lo, hi = max(c0 - max_lag, 0), min(c0 + STRIP + max_lag, w)
    for i in range(h):
        row = pad[i * STRIDE:(i + 1) * STRIDE]
        for b in range(STRIDE):
            row[b] = 0.0
        dst = row[max_lag + lo - c0:]
        src = x[i, lo:hi]
        for c in range(hi - lo):
            dst[c] = src[c]
    tail = pad[h * STRIDE:]
    for b in range(len(tail)):
        tail[b] = 0.0


@kernel
def lag_sums(x, max_lag, out):
    """``out[L + dy, L + dx]`` = Σ x[i, j] x[i + dy, j + dx] over the pixel pairs of a finite float32
    (H, W) image at each lag |dy|, |dx| <= L = ``max_lag`` <= ``MAX_SUM_LAG`` (out: (2L+1, 2L+1)
    float64). Products are summed in float32 down each column, ``ROWS`` rows at a time (a fixed
    tree), the column sums in float64 (strip by strip).

    Blocking: columns in strips of ``STRIP`` copied into a zero-padded buffer of constant row
    stride; ``LAG_ROWS`` row lags per pass, so each loaded row of the strip feeds that many sums
    (~0.6 loads per product instead of ~2.3)."""
    prefer_512_bit_vectors()
    if max_lag > MAX_SUM_LAG:
        raise ValueError("lag_sums: max_lag above MAX_SUM_LAG")
    h, w = x.shape
    n_lag = 2 * max_lag + 1
    width = min(STRIP, (w + 15) // 16 * 16)  # columns summed per strip (whole vectors)
    pad = np.empty((h + ROWS + LAG_ROWS) * STRIDE, np.float32)  # zeros beyond the image: such pairs add 0
    acc = np.empty(n_lag * LAG_ROWS * STRIP, np.float32)  # (dx, dy within the pass, column)
    sums = np.zeros((max_lag + LAG_ROWS, n_lag))
    for c0 in range(0, w, STRIP):
        _fill_strip(x, c0, max_lag, pad)
        for dy0 in range(0, max_lag + 1, LAG_ROWS):
            acc[:] = 0.0
            for i in range(0, h - dy0, ROWS):
                for k in range(n_lag):
                    a = pad[i * STRIDE + max_lag:]  # slices: the indices below are provably >= 0
                    b = pad[(i + dy0) * STRIDE + k:]
                    sk = acc[k * LAG_ROWS * STRIP:]
                    for j in range(width):
                        s0 = _rows_dot(a, b, j, j)
                        s1 = _rows_dot(a, b, j, STRIDE + j)
                        s2 = _rows_dot(a, b, j, 2 * STRIDE + j)
                        s3 = _rows_dot(a, b, j, 3 * STRIDE + j)
                        s4 = _rows_dot(a, b, j, 4 * STRIDE + j)
                        s5 = _rows_dot(a, b, j, 5 * STRIDE + j)
                        s6 = _rows_dot(a, b, j, 6 * STRIDE + j)
                        sk[j] += s0
                        sk[STRIP + j] += s1
                        sk[2 * STRIP + j] += s2
                        sk[3 * STRIP + j] += s3
                        sk[4 * STRIP + j] += s4
                        sk[5 * STRIP + j] += s5
                        sk[6 * STRIP + j] += s6
            for q in range(LAG_ROWS):
                for k in range(n_lag):
                    total = 0.0
                    for j in range(width):
                        total += acc[(k * LAG_ROWS + q) * STRIP + j]
                    sums[dy0 + q, k] += total
    for dy in range(max_lag + 1):
        for k in range(n_lag):
            out[max_lag + dy, k] = sums[dy, k]
    _mirror(out, max_lag)


@kernel
def pair_counts(mask, max_lag, out):
    """``out[L + dy, L + dx]`` = Σ m[i, j] m[i + dy, j + dx]: the number of pixel pairs of a 0/1
    uint8 (H, W) mask at each lag |dy|, |dx| <= L = ``max_lag`` < 64 (out: (2L+1, 2L+1) float64,
    exact): popcounts of row bitsets AND'ed with the rows dy below moved by dx columns. The rows
    are one flat run of words between two zero words; a row's spare zero word (:func:`pack_rows`)
    keeps the bits moved across it out of the next row, so each (dy, dx) is one loop over words."""
    prefer_512_bit_vectors()
    h = mask.shape[0]
    n_lag = 2 * max_lag + 1
    bits = pack_rows(mask)
    nw = bits.shape[1]
    words = np.zeros(h * nw + 2, np.uint64)  # word f of the rows at f + 1
    words[1:h * nw + 1] = bits.reshape(-1)
    rows = words[1:]
    for dy in range(max_lag + 1):
        n = max(h - dy, 0) * nw
        below = words[dy * nw:]  # below[f + 1] = word f of the rows dy below; below[f], below[f + 2] its neighbours
        for k in range(n_lag):
            dx = k - max_lag
            total = U64(0)
            if dx == 0:
                for f in range(n):
                    total += popcount(rows[f] & below[f + 1])
            elif dx > 0:
                s, t = U64(dx), U64(64 - dx)
                for f in range(n):
                    total += popcount(rows[f] & ((below[f + 1] >> s) | (below[f + 2] << t)))
            else:
                s, t = U64(-dx), U64(64 + dx)
                for f in range(n):
                    total += popcount(rows[f] & ((below[f + 1] << s) | (below[f] >> t)))
            out[max_lag + dy, k] = total
    _mirror(out, max_lag)


@kernel_strict
def smooth_and_sample(image, weights, smooth, sample):
    """Smooth one float32 (H, W) image (non-finite pixels as 0) by the Gaussian ``weights``
    (:func:`gaussian_smooth`) into ``smooth``, and copy the smoothed values at the finite pixels of
    every other row and column into ``sample``; their number."""
    h, w = image.shape
    n_bad = 0
    for i in range(h):
        for c in range(w):
            n_bad += not np.isfinite(image[i, c])
    if n_bad == 0:  # all finite (most cutouts): no zero-filled copy
        gaussian_smooth(image, weights, smooth)
    else:
        x = np.empty((h, w), np.float32)
        for i in range(h):
            for c in range(w):
                v = image[i, c]
                x[i, c] = v if np.isfinite(v) else F32(0.0)
        gaussian_smooth(x, weights, smooth)
    n = 0
    for i in range(0, h, 2):
        for c in range(0, w, 2):
            if np.isfinite(image[i, c]):
                sample[n] = smooth[i, c]
                n += 1
    return n


@kernel_strict
def sorted_median_mad(values, median, mad):
    """Per row b of an ascending float (B, n) array, n odd: ``median[b]`` = its middle value c and
    ``mad[b]`` = the middle value of |v - c| (as numpy computes it, in the array's precision).
    The n // 2 + 1 values nearest c are a window v[s .. s + n // 2] about c, so the MAD is the
    least over s of max(c - v[s], v[s + n // 2] - c): a binary search for where the two cross
    (rounding keeps both monotone, so this is the same order statistic)."""
    m = values.shape[1] // 2
    for b in range(values.shape[0]):
        v = values[b]
        c = v[m]
        lo, hi = 0, m  # the first window start s whose left deviation is not the larger
        while lo < hi:
            s = (lo + hi) // 2
            if c - v[s] <= v[s + m] - c:
                hi = s
            else:
                lo = s + 1
        best = v[lo + m] - c
        if lo > 0:
            best = min(best, c - v[lo - 1])
        median[b] = c
        mad[b] = best


@kernel_strict
def blank_sky_autocovariance(image, smooth, level, cut, grow, min_blank, max_lag, out):
    """Noise autocovariance of one float32 (H, W) image on its blank sky into ``out`` (2L+1, 2L+1)
    float64, L = ``max_lag`` (the definition: :func:`dhs_gen.injection.metrics.noise_autocovariance`),
    given its ``smooth`` version (:func:`smooth_and_sample`): sources = smoothed pixels with
    smooth - ``level`` > ``cut`` (float32), dilated by ``grow`` (:func:`dilate_bits`); blank =
    finite and not a source, or every finite pixel when fewer than ``min_blank`` are blank; C =
    :func:`lag_sums` of the blank pixels less their mean over the blank :func:`pair_counts`; NaN
    where a lag has no pair (all NaN without a blank pixel)."""
    h, w = image.shape
    blank = np.empty((h, w), np.uint8)
    for i in range(h):
        for c in range(w):
            blank[i, c] = smooth[i, c] - level > cut  # (the sources, first)
    grown = dilate_bits(pack_rows(blank), w, grow)
    nw = (w + 63) // 64
    source = np.empty(nw * 64, np.uint8)  # one row of grown, as bytes
    sum_blank, sum_finite = np.zeros(w), np.zeros(w)  # per column: the sums vectorise along rows
    n_finite, n_blank = 0, 0
    for i in range(h):
        for k in range(nw):
            word = grown[i, k]
            for j in range(64):
                source[64 * k + j] = (word >> U64(j)) & U64(1)
        for c in range(w):
            v = image[i, c]
            ok = np.isfinite(v)
            is_blank = ok & (source[c] == 0)  # no branch: vectorises
            blank[i, c] = is_blank
            n_finite += ok
            n_blank += is_blank
            sum_finite[c] += np.float64(v) if ok else 0.0
            sum_blank[c] += np.float64(v) if is_blank else 0.0
    total = sum_blank.sum()
    if n_blank < min_blank:
        for i in range(h):
            for c in range(w):
                blank[i, c] = np.isfinite(image[i, c])
        n_blank, total = n_finite, sum_finite.sum()
    if n_blank == 0:
        out[:] = np.nan
        return
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
    c = sie_tuple(coef)
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
                inside = (peak > 0) & (v >= cut)
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


@kernel_strict
def crop_and_outer_pixels(cutout, start, size, margin, index, row_start, crop, pixels):
    """One pass over a (C, S0, S0) host cutout, row by row (each cutout row read once, in address
    order, so that it streams from memory): its crop of rows and columns ``start`` .. ``start`` +
    ``size`` - 1 copied into ``crop`` (C, size, size) with non-finite pixels as 0, and
    ``pixels[b, k]`` = ``cutout[b].ravel()[index[k]]`` for ascending
    flat indices ``index``, row i's being ``index[row_start[i]:row_start[i + 1]]``. Returns (number
    of non-finite crop pixels, number of them at least ``margin`` pixels from every edge of the
    crop). Indices whose sign the compiler cannot know are unsigned, so that the copies are
    plain vector moves (a signed index costs a negative-index check each)."""
    c, s0, _ = cutout.shape
    n_bad, n_central = 0, 0
    for b in range(c):
        for i in range(s0):
            ci = i - start
            if 0 <= ci < size:
                row_bad = 0
                for j in range(size):
                    v = cutout[b, i, U64(start + j)]
                    ok = v - v == 0.0  # finite (inf - inf and NaN - NaN are NaN): a compare that vectorises
                    crop[b, U64(ci), j] = v if ok else F32(0.0)
                    row_bad += not ok
                n_bad += row_bad
                if row_bad and margin <= ci < size - margin:  # the central ones, in the rest of the row
                    for j in range(margin, size - margin):
                        n_central += not np.isfinite(cutout[b, i, U64(start + j)])
            base = i * s0
            for k in range(row_start[i], row_start[i + 1]):
                pixels[b, U64(k)] = cutout[b, i, U64(index[k] - base)]
    return n_bad, n_central


@kernel_strict
def light_moments(images, out):
    """``out[b]`` = (Σ f, Σ f x_col, Σ f y_row) of each (B, H, W) image's positive flux f =
    max(pixel, 0) (NaN as 0), in float64: sums down each column, then across."""
    n, h, w = images.shape
    flux = np.empty(w)
    flux_row = np.empty(w)
    for b in range(n):
        flux[:] = 0.0
        flux_row[:] = 0.0
        for i in range(h):
            for j in range(w):
                v = np.float64(images[b, i, j])
                v = v if v > 0.0 else 0.0
                flux[j] += v
                flux_row[j] += v * i
        total, moment_x, moment_y = 0.0, 0.0, 0.0
        for j in range(w):
            total += flux[j]
            moment_x += flux[j] * j
            moment_y += flux_row[j]
        out[b, 0], out[b, 1], out[b, 2] = total, moment_x, moment_y
