"""Hard negatives: the injected light with its azimuthal sectors shuffled about the lens centre.

Δ = positive − control (the arc). The shuffled region is the annulus about the lens centre that
holds ``FLUX_FRACTION`` (99.5%) of Δ's positive flux (summed over bands): radii from the radial
cumulative flux, ``(1 − F)/2`` inside r_in and outside r_out. The annulus is cut into N azimuthal
sectors (N = 2π θ_E / (2 FWHM), between 3 and 8: sectors at least two PSF FWHMs long on the
Einstein ring when they fit) and the sectors are permuted (never all by the same angle, which would
only rotate the lens): each output sector is the input sector it is given, rotated rigidly about
the lens centre and resampled bilinearly; neighbouring sectors cross-fade (smoothly, C1) over two
PSF FWHMs of arc length (at most a whole sector), and the shuffled annulus fades into the untouched
light over two FWHMs beyond r_in and r_out, so no edge sharper than the PSF appears. One geometry
for all bands, so colours are kept pixel by pixel; the flux and radial profile are kept (the
cross-fade windows form a partition of unity before and after the rotation, and the radial fade is
rotation invariant) up to the resampling (< 1% for PSF-smooth light); pixels beyond the fades
(< 0.5% of the flux) are unchanged. Hard negative = control + shuffled Δ. For θ_E ≲ FWHM the arc
is unresolved and 3 sectors with wide cross-fades move light between thirds of the ring only.

The earlier rule (LEGACY_FORMATS.md) permuted single pixels in [θ_E − 1.5 FWHM, θ_E + 1.5 FWHM):
4–21% of the arc's flux lay outside and stayed coherent, and the pixel permutation added
sub-PSF speckle (power at spatial frequencies no PSF-convolved image has) a network can learn.

Computation: compiled kernels, one stamp at a time (:func:`shuffle_row`: the annulus radii, then
the shuffle itself, one pass per stamp: sector coordinate, cross-fade weights, rotated bilinear
samples and the radial fade per pixel), in float32 like the pixels, with polynomial atan2/sin/cos
(~1e-7) and fused multiply-adds: the pixels equal the numpy definition to float32 rounding (2e-6
of the peak, tests/dhs_gen/injection/test_hardneg.py), the annulus radii exactly. The products'
composition (:func:`dhs_gen.injection.artifacts.compose_injection`) calls :func:`shuffle_row`
for each row while its stamps are in cache; :func:`shuffle_delta` does it for one stamp. The
permutations come from each row's own generator (:func:`sector_plan`; :func:`seeded_sector_plan`
steps the rows' PCG64s in compiled code, the same permutations), so a row's output depends on its
generator only.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from dhs_gen.injection.streams import pcg64_output, pcg64_seed, pcg64_step, state_words
from dhs_gen.jit import kernel, kernel_strict
from dhs_gen.lensing.kernels import atan2f

f32 = np.float32

FLUX_FRACTION = 0.995
N_SECTORS = 8  # at most
MIN_SECTORS = 3  # the fewest with a permutation that is not a rotation
SECTOR_FWHM = 2.0  # sectors at least this many PSF FWHMs long at the Einstein radius, when they fit
FADE_FWHM = 2.0  # cross-fades (between sectors, at the annulus edges) this many PSF FWHMs long
RADIAL_BIN = 0.25  # [pixels] radial step of the annulus radii


def shuffle_annulus(delta: np.ndarray, center=(0.0, 0.0), flux_fraction: float = FLUX_FRACTION) -> tuple:
    """(r_in, r_out) [pixels] of the annulus about ``center`` = (x, y) offset [pixels] from the
    stamp centre that holds ``flux_fraction`` of the positive flux of ``delta`` (C, H, W) summed
    over bands (at least; radii in steps of ``RADIAL_BIN``): pixels with r_in ≤ r ≤ r_out. (0, 0)
    when there is no positive flux (or a non-finite one)."""
    delta = np.ascontiguousarray(delta, dtype=np.float32)
    size = delta.shape[-2] * delta.shape[-1]
    r_in, r_out = _annulus_row(delta, float(center[0]), float(center[1]), float(flux_fraction),
                               np.empty(size, np.int64), np.empty(size))
    return float(r_in), float(r_out)


@kernel_strict
def _annulus_row(delta, cx, cy, flux_fraction, bins, fluxes):
    """(r_in, r_out) of one float32 stamp (C, H, W) about (cx, cy): radial cumulative positive flux
    (summed over bands, float64) in RADIAL_BIN bins; whole bins kept, (1 - F)/2 left inside r_in
    and outside r_out. IEEE (NaN -> (0, 0)). ``bins`` (H W,) int64 and ``fluxes`` (H W,) float64
    are scratch."""
    n_bands, h, w = delta.shape
    tail = 0.5 * (1.0 - flux_fraction)
    inv_bin = 1.0 / RADIAL_BIN  # a power of two: x * inv_bin is x / RADIAL_BIN exactly
    top = 0
    for i in range(h):
        y = (i - (h - 1) / 2.0) - cy
        for j in range(w):
            x = (j - (w - 1) / 2.0) - cx
            bins[i * w + j] = int(math.sqrt(x * x + y * y) * inv_bin)
    for p in range(h * w):
        top = max(top, bins[p])
    fluxes[:] = 0.0  # each pixel's flux summed over bands in band order (one loop per band: it vectorises)
    for c in range(n_bands):
        band = delta[c].ravel()
        for p in range(h * w):
            v = band[p]
            fluxes[p] += v if not v < 0 else 0.0  # clip at 0; NaN stays NaN
    hist = np.zeros(top + 1)
    total = 0.0
    for p in range(h * w):  # in pixel order, as before
        hist[bins[p]] += fluxes[p]
        total += fluxes[p]
    if not total > 0 or not total < np.inf:
        return 0.0, 0.0
    first, last, run = 0, 0, 0.0
    for k in range(top + 1):
        run += hist[k]
        cum = run / total
        first += cum <= tail
        last += cum < 1.0 - tail
    return first * RADIAL_BIN, (min(last, top) + 1) * RADIAL_BIN


def annulus_mask(shape, r_in: float, r_out: float, center=(0.0, 0.0)) -> np.ndarray:
    """(H, W) bool: pixels with r_in ≤ radius ≤ r_out [pixels] about ``center`` (x, y offset from
    the stamp centre)."""
    h, w = shape
    x = np.arange(w) - (w - 1) / 2.0 - center[0]
    y = np.arange(h) - (h - 1) / 2.0 - center[1]
    r = np.hypot(x[None, :], y[:, None])
    return (r >= r_in) & (r <= r_out)


def sector_count(theta_pix: float, fwhm_pix: float) -> int:
    """Number of sectors: as many as the Einstein ring holds sectors at least ``SECTOR_FWHM`` PSF
    FWHMs long (2 pi theta_E / (SECTOR_FWHM FWHM)), between ``MIN_SECTORS`` and ``N_SECTORS``."""
    return int(sector_counts(np.asarray([theta_pix], np.float64), np.asarray([fwhm_pix], np.float64))[0])


def sector_counts(theta_pix: np.ndarray, fwhm_pix: np.ndarray) -> np.ndarray:
    """:func:`sector_count` of each θ_E and PSF FWHM [pixels] (float64 arrays), as int64
    (``MIN_SECTORS`` where either is not finite or the FWHM is not positive)."""
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        n = np.floor(2.0 * math.pi * theta_pix / (SECTOR_FWHM * fwhm_pix))
    usable = np.isfinite(theta_pix) & np.isfinite(fwhm_pix) & (fwhm_pix > 0)
    return np.where(usable, np.clip(np.nan_to_num(n), MIN_SECTORS, N_SECTORS), MIN_SECTORS).astype(np.int64)


def sector_permutation(rng: np.random.Generator, n: int = N_SECTORS) -> np.ndarray:
    """A permutation of the ``n`` sectors that is not a rotation (source sector of each output
    sector; redrawn while every sector would move by the same angle)."""
    while True:
        perm = rng.permutation(n)
        sectors = perm.tolist()
        if any((sectors[m] - m - sectors[0]) % n for m in range(1, n)):  # not every shift equal to the first
            return perm


def shuffle_delta(delta: np.ndarray, theta_pix: float, fwhm_pix: float, rng: np.random.Generator,
                  center=(0.0, 0.0)) -> np.ndarray:
    """Δ (C, H, W) with the azimuthal sectors of its 99.5%-flux annulus about ``center`` (x, y
    offset [pixels] from the stamp centre) permuted (see the module docstring); float32.
    ``theta_pix``: θ_E [pixels] (sets the number of sectors); ``fwhm_pix``: the PSF FWHM [pixels]
    (the sector length and every cross-fade scale with it); ``rng`` draws the permutation (only
    when Δ has positive flux)."""
    delta = np.ascontiguousarray(delta, dtype=np.float32)
    n_bands, h, w = delta.shape
    _, r_out = shuffle_annulus(delta, center)
    ramps, n_sectors, perms = sector_plan([theta_pix], [fwhm_pix], [rng], np.array([r_out > 0]))
    out = np.empty_like(delta)
    shuffle_row(delta.ravel(), out.ravel(), h, w, float(center[0]), float(center[1]), ramps[0], n_sectors[0],
                perms[0], shuffle_scratch(n_bands, h, w))
    return out


def sector_plan(theta_pix: Sequence[float], fwhm_pix: Sequence[float], rngs: Sequence[np.random.Generator],
                drawn: np.ndarray | None = None) -> tuple:
    """(ramps (B,) float64 [pixels], n_sectors (B,) int64, perms (B, N_SECTORS) int64) of the shuffle
    of B stamps with these θ_E and PSF FWHM [pixels]: the fade length ``FADE_FWHM`` x the FWHM (at
    least a pixel), and each row's :func:`sector_permutation` drawn from ``rngs[b]`` where ``drawn``
    (bool (B,); every row when None). n_sectors is 0 (Δ left as it is) where nothing is drawn or
    the FWHM is not finite (no fades defined: the permutation is drawn all the same)."""
    fwhm, rows, counts, perms = _plan_rows(theta_pix, fwhm_pix, drawn)
    for b, n in zip(rows.tolist(), counts.tolist()):
        perms[b, :n] = sector_permutation(rngs[b], n)
    return _plan(fwhm, rows, counts, perms)


def seeded_sector_plan(theta_pix: Sequence[float], fwhm_pix: Sequence[float], seeds: np.ndarray,
                       stream: int) -> tuple:
    """:func:`sector_plan` of every row with ``rngs`` = ``generators(seeds, stream)``
    (:mod:`dhs_gen.injection.streams`), the same permutations, without building the generators:
    each row's PCG64 is seeded and stepped in compiled code (:func:`_seeded_permutations`)."""
    fwhm, rows, counts, perms = _plan_rows(theta_pix, fwhm_pix, None)
    _seeded_permutations(state_words(np.asarray(seeds).astype(np.uint64), stream), counts, perms)
    return _plan(fwhm, rows, counts, perms)


def _plan_rows(theta_pix, fwhm_pix, drawn) -> tuple:
    """(FWHM at least a pixel (NaN stays NaN: nothing fades), rows to draw, their sector counts,
    zeroed permutations (B, N_SECTORS))."""
    fwhm = np.maximum(np.asarray(fwhm_pix, np.float64), 1.0)
    rows = np.arange(len(fwhm)) if drawn is None else np.flatnonzero(drawn)
    counts = sector_counts(np.asarray(theta_pix, np.float64)[rows], fwhm[rows])
    return fwhm, rows, counts, np.zeros((len(fwhm), N_SECTORS), np.int64)


def _plan(fwhm, rows, counts, perms) -> tuple:
    n_sectors = np.zeros(len(fwhm), np.int64)
    n_sectors[rows] = np.where(np.isfinite(fwhm[rows]), counts, 0)
    return FADE_FWHM * fwhm, n_sectors, perms


@kernel
def _seeded_permutations(words, counts, perms):
    """perms[b, :counts[b]] = :func:`sector_permutation` of the Generator whose PCG64 is seeded by
    the seed-sequence state ``words[b]`` (uint64 (4,)): numpy's ``Generator.permutation(n)``
    (arange, then Fisher-Yates from the last element: j = random_interval(i), the smallest bit mask
    >= i applied to 32-bit draws until one is <= i; 32-bit draws are the low, then the high half
    of one 64-bit output), redrawn while it is a rotation."""
    for b in range(len(counts)):
        hi, lo, inc_hi, inc_lo = pcg64_seed(words[b])
        pending, half = False, np.uint64(0)
        n = counts[b]
        rotation = True
        while rotation:
            for m in range(n):
                perms[b, m] = m
            for i in range(n - 1, 0, -1):
                bound = np.uint64(i)
                mask = bound
                for shift in (1, 2, 4, 8, 16, 32):
                    mask |= mask >> np.uint64(shift)
                while True:
                    if pending:
                        value, pending = half, False
                    else:
                        hi, lo = pcg64_step(hi, lo, inc_hi, inc_lo)
                        out = pcg64_output(hi, lo)
                        value, half, pending = out & np.uint64(0xFFFFFFFF), out >> np.uint64(32), True
                    value &= mask
                    if value <= bound:
                        break
                j = np.int64(value)
                perms[b, i], perms[b, j] = perms[b, j], perms[b, i]
            rotation = True
            for m in range(1, n):
                if (perms[b, m] - m - perms[b, 0]) % n != 0:
                    rotation = False


@kernel(inline="always")
def _atan2_positive(y, x):
    """atan2(y, x) in [0, 2 pi) for float32 y, x (0 at the origin): the lensing kernels' atan2f
    (Cephes atanf, ~1e-7 relative, branch-free so that loops vectorise), negative angles + 2 pi."""
    angle = atan2f(y, x)
    return angle + f32(2.0 * math.pi) if angle < f32(0.0) else angle


@kernel
def _sin_quarter(s):
    """sin(s) for float32 s in [0, pi/2] (Taylor to s^13: < 1e-9 there)."""
    z = s * s
    return s * (f32(1.0) + z * (f32(-1.0 / 6) + z * (f32(1.0 / 120) + z * (f32(-1.0 / 5040) + z * (
        f32(1.0 / 362880) + z * (f32(-1.0 / 39916800) + z * f32(1.0 / 6227020800)))))))


@kernel
def _cos_quarter(s):
    """cos(s) for float32 s in [0, pi/2] (Taylor to s^14: < 1e-10 there)."""
    z = s * s
    return f32(1.0) + z * (f32(-0.5) + z * (f32(1.0 / 24) + z * (f32(-1.0 / 720) + z * (f32(1.0 / 40320) + z * (
        f32(-1.0 / 3628800) + z * (f32(1.0 / 479001600) + z * f32(-1.0 / 87178291200)))))))


@kernel
def _pick(i, t0, t1, t2, t3, t4, t5, t6, t7):
    """t_i for an int32 i in [0, 8) by selects (a table load keeps a loop from vectorising)."""
    v = t1 if i == np.int32(1) else t0
    v = t2 if i == np.int32(2) else v
    v = t3 if i == np.int32(3) else v
    v = t4 if i == np.int32(4) else v
    v = t5 if i == np.int32(5) else v
    v = t6 if i == np.int32(6) else v
    return t7 if i == np.int32(7) else v


@kernel
def shuffle_row(src, dst, h, w, cx, cy, ramp, n, perm, scratch):
    """Δ of one (C, H, W) stamp, ``src`` flat float32, shuffled into ``dst`` (flat, the same size):
    its annulus (:func:`_annulus_row`, :data:`FLUX_FRACTION`) about (cx, cy) [pixels from the
    stamp centre], then :func:`_shuffle_stamp` with ``n`` sectors (a copy where the annulus is
    empty). For compiled callers that compose each stamp while it is in cache; ``scratch``:
    :func:`shuffle_scratch`."""
    bins, fluxes = scratch[6], scratch[7]
    r_in, r_out = _annulus_row(src.reshape((src.size // (h * w), h, w)), cx, cy, FLUX_FRACTION, bins, fluxes)
    _shuffle_stamp(src, dst, h, w, cx, cy, r_in, r_out, ramp, n if r_out > 0 else 0, perm, scratch)


@kernel
def shuffle_scratch(n_bands, h, w):
    """Scratch arrays of :func:`_shuffle_stamp` for (C, H, W) stamps, allocated once per batch."""
    size = h * w
    return (np.zeros(n_bands * (h + 2) * (w + 2), np.float32),  # each band with a zero border
            np.zeros((2, N_SECTORS), np.float32),  # cos, sin of each output sector's rotation
            np.empty(size, np.float32), np.empty(size, np.float32),  # the listed pixels' offsets from the centre
            np.empty(size, np.int64),  # and their flat index
            np.empty((6, size), np.float32),  # (row, col) of both samples, w_own, taper
            np.empty(size, np.int64), np.empty(size))  # the annulus' radial bins and fluxes



@kernel
def _shuffle_stamp(src, dst, h, w, cx, cy, r_in, r_out, ramp, n, perm, scratch):
    """The shuffle of one stamp ``src`` (C H W,) flat float32 into ``dst`` (the same shape) if its
    annulus is not empty (n > 0 sectors, source sector of each in ``perm``); a copy otherwise.
    (cx, cy): the centre's offset from the stamp centre, annulus (r_in, r_out) and fade ``ramp``
    [pixels]; ``scratch``: :func:`shuffle_scratch`.
    Each pixel within the fades of the annulus takes the bilinear samples (zero border) of its own
    sector's source and, inside the cross-fade, its nearer neighbour's, each rotated by whole
    sectors about the centre, weighted w and 1 - w with w = 1/2 + sin(pi t / 2)/2, and fades
    radially into Δ with cos^2. float32 arithmetic (fast-math; finite inputs: the caller passes
    n = 0 for anything else) in the order of the numpy definition. The pixels near the annulus
    are listed first; their geometry is then one branch-free loop (it vectorises) and their
    sampling another."""
    padded, rot, px, py, where, geo = scratch[:6]
    wp = w + 2
    plane, size = (h + 2) * wp, h * w
    n_bands = src.size // size
    row_max, col_max = f32(h + 1.0 - 1e-3), f32(w + 1.0 - 1e-3)
    for p in range(src.size):  # pixels beyond the fades keep Δ
        dst[p] = src[p]
    if n == 0:
        return
    lo, hi = r_in - ramp, r_out + ramp
    r_in32, r_out32, ramp32, lo32, hi32 = f32(r_in), f32(r_out), f32(ramp), f32(lo), f32(hi)
    for m in range(n):  # sector m shows sector perm[m]: its content rotated by (perm[m] - m) sectors
        move = (perm[m] - m) % n
        rot[0, m] = f32(math.cos(move * (2.0 * math.pi / n)))
        rot[1, m] = f32(math.sin(move * (2.0 * math.pi / n)))
    c0, c1, c2, c3, c4, c5, c6, c7 = rot[0, 0], rot[0, 1], rot[0, 2], rot[0, 3], rot[0, 4], rot[0, 5], rot[0, 6], rot[0, 7]
    s0, s1, s2, s3, s4, s5, s6, s7 = rot[1, 0], rot[1, 1], rot[1, 2], rot[1, 3], rot[1, 4], rot[1, 5], rot[1, 6], rot[1, 7]
    n32 = np.int32(n)
    inv_width = f32(n / (2.0 * math.pi))
    fade_scale = f32(2.0 * math.pi / n / (0.5 * ramp))  # sector width / half the fade arc length
    taper_scale = f32(0.5 * math.pi / ramp)
    ox, oy = (w - 1) / 2.0 + cx, (h - 1) / 2.0 + cy
    ox1, oy1 = f32(ox), f32(oy)
    for c in range(n_bands):  # unsigned indices: no negative-index wrap (the copy vectorises)
        for i in range(h):
            at, to = np.uintp((c * h + i) * w), np.uintp(c * plane + (i + 1) * wp + 1)
            for j in range(w):
                padded[to + np.uintp(j)] = src[at + np.uintp(j)]
    listed = 0
    for i in range(h):  # the pixels within hi of the centre (and a pixel more)
        y = f32(i - oy)
        if not abs(y) <= hi32 + f32(1.0):
            continue
        half_chord = math.sqrt(max(float(hi32) ** 2 - float(y) ** 2, 0.0)) + 1.0
        for j in range(max(int(math.floor(ox - half_chord)), 0), min(int(math.ceil(ox + half_chord)) + 1, w)):
            at = np.uintp(listed)  # (unsigned: no negative-index wrap)
            px[at], py[at], where[at] = f32(j - ox), y, i * w + j
            listed += 1
    for m in range(listed):  # geometry
        x, y = px[m], py[m]
        r = math.sqrt(x * x + y * y)
        u = _atan2_positive(y, x) * inv_width  # sector coordinate in [0, n]
        k = np.int32(u)
        f = u - f32(k)
        k = k - n32 if k >= n32 else k
        # t = distance to the sector edge / half the cross-fade (at most half a sector wide)
        t = min(min(f, f32(1.0) - f) * max(r * fade_scale, f32(2.0)), f32(1.0))
        geo[4, m] = f32(1.0) if t >= f32(1.0) else f32(0.5) + f32(0.5) * _sin_quarter(f32(0.5 * math.pi) * t)
        other = k - np.int32(1) if f < f32(0.5) else k + np.int32(1)
        other = other + n32 if other < np.int32(0) else (other - n32 if other >= n32 else other)
        cs, sn = _pick(k, c0, c1, c2, c3, c4, c5, c6, c7), _pick(k, s0, s1, s2, s3, s4, s5, s6, s7)
        geo[0, m] = min(max(sn * x + cs * y + oy1 + f32(1.0), f32(0.0)), row_max)
        geo[1, m] = min(max(cs * x - sn * y + ox1 + f32(1.0), f32(0.0)), col_max)
        cs, sn = _pick(other, c0, c1, c2, c3, c4, c5, c6, c7), _pick(other, s0, s1, s2, s3, s4, s5, s6, s7)
        geo[2, m] = min(max(sn * x + cs * y + oy1 + f32(1.0), f32(0.0)), row_max)
        geo[3, m] = min(max(cs * x - sn * y + ox1 + f32(1.0), f32(0.0)), col_max)
        d = min(max(max(r_in32 - r, r - r_out32), f32(0.0)), ramp32)
        fade = _cos_quarter(taper_scale * d)
        geo[5, m] = fade * fade if r >= lo32 and r <= hi32 else f32(0.0)
    for m in range(listed):  # samples
        wo, tp = geo[4, m], geo[5, m]
        if tp == f32(0.0):
            continue
        r0, c0_ = np.uint32(geo[0, m]), np.uint32(geo[1, m])
        p, fr, fc = r0 * np.uint32(wp) + c0_, geo[0, m] - f32(r0), geo[1, m] - f32(c0_)
        r1, c1_ = np.uint32(geo[2, m]), np.uint32(geo[3, m])
        q, gr, gc = r1 * np.uint32(wp) + c1_, geo[2, m] - f32(r1), geo[3, m] - f32(c1_)
        fade = wo < f32(1.0)  # inside the cross-fade with the neighbouring sector
        pixel = np.uintp(where[m])  # (unsigned indices: no negative-index wrap)
        for c in range(n_bands):
            base, at = np.uint32(c * plane), pixel + np.uintp(c * size)
            a00, a01 = padded[base + p], padded[base + p + np.uint32(1)]
            a10, a11 = padded[base + p + np.uint32(wp)], padded[base + p + np.uint32(wp + 1)]
            top = a00 + (a01 - a00) * fc
            shuffled = top + (a10 + (a11 - a10) * fc - top) * fr
            if fade:
                a00, a01 = padded[base + q], padded[base + q + np.uint32(1)]
                a10, a11 = padded[base + q + np.uint32(wp)], padded[base + q + np.uint32(wp + 1)]
                top = a00 + (a01 - a00) * gc
                shuffled = wo * shuffled + (f32(1.0) - wo) * (top + (a10 + (a11 - a10) * gc - top) * gr)
            dst[at] = tp * shuffled + (f32(1.0) - tp) * src[at]
