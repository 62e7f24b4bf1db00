"""Compiled kernels of the fast lensing engine: float32 math that vectorises, the SIE (+ shear)
lens map of one point, the SIE + shear Sérsic renderer of a batch (:func:`render_sie_sersic`)
and the spectrum product of the PSF convolution (:func:`even_spectrum_product`).

numba's scalar ``math.exp2`` / ``math.log2`` / ``math.atan2`` call libm once per element and do
not vectorise here (no SVML), which makes them ~10x slower per element than numpy's AVX-512
loops. The functions below are branch-free Cephes-style polynomials (selects, no branches; the
exponent is read and written by a bit-cast between float32 and int32), so a loop over them
vectorises. Relative error against numpy float32: exp2 and log2 <= 2e-7, atan2 <= 3e-7 (a few
ulp; tests/dhs_gen/lensing/test_kernels.py). They expect float32 arguments (cast with
``np.float32``); every constant is float32, so float64 never creeps into a loop.

Call them from other :func:`dhs_gen.jit.kernel` functions; they are compiled inline
(``inline="always"``: numba inlines them at the IR level, so the caller's loop sees their
arithmetic). Domains (the callers' inputs stay inside them):

- ``exp2f_normal(x)``: 2^x with x clamped to [-126, 127] (normal float32 results only).
- ``log2f_normal(x)``: log2(x) for normal float32 x (>= 2^-126; no subnormal path, no zero,
  negative x not defined).
- ``log2_1pf(w)``: log2(1 + w) for w > -1 with 1 + w a normal float32, accurate for small
  |w| too (log1p).
- ``atan2f(y, x)``: any finite y, x, the angle of (x, y) in [-pi, pi]; atan2f(0, 0) = 0 (the
  sign of a zero is not tracked: fast-math). ``atan_first_quadrant(ay, ax)``: ay, ax >= 0.

The SIE + shear map (:func:`sie_source_position`) reads its per-row constants from the
float32 vector of :func:`sie_row_coefficients` (N_SIE columns).

Caching: a change here recompiles every dhs_gen kernel that inlines these functions (their
on-disk caches are keyed by :data:`dhs_gen.jit.KERNEL_SOURCES_STAMP`, a hash of all kernel
modules); tests compile their kernels uncached.
"""
from __future__ import annotations

from typing import Dict

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from dhs_gen.jit import kernel
from dhs_gen.lensing.geometry import NIE_CORE_ARCSEC, ellipticity_to_phi_q

F32 = np.float32
Q_MAX = 1.0 - 1e-6  # an exactly round SIE is evaluated as q = 1 - 1e-6 (lenstronomy: 1 - 1e-8)


@intrinsic
def float_bits(typingctx, x):
    """The IEEE-754 bits of a float32 as an int32 (a bit-cast, no conversion)."""
    if x != types.float32:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(32))

    return types.int32(types.float32), codegen


@intrinsic
def bits_float(typingctx, x):
    """The float32 whose IEEE-754 bits are the low 32 bits of the integer ``x`` (a bit-cast, no
    conversion; numba widens int32 arithmetic to int64, so any integer type is accepted)."""
    if not isinstance(x, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        low = args[0] if x.bitwidth == 32 else builder.trunc(args[0], ir.IntType(32))
        return builder.bitcast(low, ir.FloatType())

    return types.float32(x), codegen


PREFER_VECTOR_WIDTH = '"prefer-vector-width"="512"'  # LLVM function attribute (string form)


@intrinsic
def prefer_512_bit_vectors(typingctx):
    """Mark the calling kernel for 512-bit vectorisation where the CPU has AVX-512 (no effect
    elsewhere: the widest vectors the CPU has are used). LLVM's tuning for AVX-512 server and
    client cores prefers 256-bit vectors (to avoid frequency drops of old CPUs); for the long
    arithmetic loops of :func:`render_sie_sersic` 512-bit vectors are ~1.2-1.3x faster here.
    Only the vector width changes: the arithmetic of every point is the same (results may
    differ in the last bit where a point moves between the vector body and the scalar remainder
    of a loop). llvmlite's ``FunctionAttributes`` accepts only keyword attributes, so the
    string attribute is added to the set directly (it is written into the IR as is)."""
    def codegen(context, builder, signature, args):
        set.add(builder.function.attributes, PREFER_VECTOR_WIDTH)
        return context.get_dummy_value()

    return types.none(), codegen


@kernel(inline="always")
def pow2i(i):
    """2^i as float32 for an integer i in [-126, 127] (the exponent field written directly)."""
    return bits_float((i + 127) << 23)


@kernel(inline="always")
def _exp2_parts(x):
    """(p, i) with 2^x = p 2^i, i = round(x) (float32), |x - i| <= 1/2 and p = 2^(x - i) by the
    Cephes exp2f degree-6 polynomial."""
    fi = np.float32(np.floor(x + F32(0.5)))
    f = x - fi
    p = F32(1.535336188319500e-4)
    p = p * f + F32(1.339887440266574e-3)
    p = p * f + F32(9.618437357674640e-3)
    p = p * f + F32(5.550332471162809e-2)
    p = p * f + F32(2.402264791363012e-1)
    p = p * f + F32(6.931472028550421e-1)
    p = p * f + F32(1.0)
    return p, np.int32(fi)


@kernel(inline="always")
def exp2f_normal(x):
    """2^x, float32, for x in [-126, 127] (clamped there): Cephes exp2f, x = i + f, |f| <= 1/2,
    a degree-6 polynomial for 2^f (:func:`_exp2_parts`) times the power of two 2^i."""
    p, i = _exp2_parts(min(max(x, F32(-126.0)), F32(127.0)))
    return p * pow2i(i)


@kernel(inline="always")
def log2f_normal(x):
    """log2(x), float32, for normal x (>= 2^-126): Cephes logf, x = m 2^e with m in
    [sqrt(1/2), sqrt(2)), a degree-9 polynomial in m - 1."""
    bits = float_bits(x)
    # the exponent as float32 via int32 (numba widens integer arithmetic to int64; an int64 ->
    # float conversion would need 512-bit vector instructions, which slow the whole loop)
    e = np.float32(np.int32(((bits >> 23) & 0xFF) - 126))
    m = bits_float((bits & 0x007FFFFF) | 0x3F000000)  # [0.5, 1)
    low = m < F32(0.707106781186547524)
    e = e - F32(1.0) if low else e
    m = (m + m if low else m) - F32(1.0)
    z = m * m
    y = F32(7.0376836292e-2)
    y = y * m - F32(1.1514610310e-1)
    y = y * m + F32(1.1676998740e-1)
    y = y * m - F32(1.2420140846e-1)
    y = y * m + F32(1.4249322787e-1)
    y = y * m - F32(1.6668057665e-1)
    y = y * m + F32(2.0000714765e-1)
    y = y * m - F32(2.4999993993e-1)
    y = y * m + F32(3.3333331174e-1)
    y = y * m * z - F32(0.5) * z
    log2e_m1 = F32(0.44269504088896340736)  # log2(e) - 1
    return (y * log2e_m1 + m * log2e_m1 + y + m) + e


@kernel(inline="always")
def log2_1pf(w):
    """log2(1 + w), float32, w > -1 with 1 + w a normal float32, accurate also for small |w|
    (log1p): the rounding error of r = 1 + w, w - (r - 1), is added back to first order,
    (w - (r - 1)) / r / ln 2."""
    r = F32(1.0) + w
    return log2f_normal(r) + (w - (r - F32(1.0))) / r * F32(1.44269504088896340736)


@kernel(inline="always")
def atan_first_quadrant(ay, ax):
    """atan2(ay, ax) [rad] for ay, ax >= 0, float32 in [0, pi/2] (Cephes atanf on t = lo/hi,
    lo, hi = min, max(ax, ay), reduced to |t'| <= tan(pi/8) by t' = (lo - hi)/(lo + hi) (+ pi/4)
    when t > tan(pi/8): one division; 0 at the origin)."""
    hi, lo = max(ax, ay), min(ax, ay)
    big = lo > F32(0.41421356237309504880) * hi
    num = lo - hi if big else lo
    den = lo + hi if big else hi
    t = num / den if den > F32(0.0) else F32(0.0)
    z = t * t
    p = F32(8.05374449538e-2)
    p = p * z - F32(1.38776856032e-1)
    p = p * z + F32(1.99777106478e-1)
    p = p * z - F32(3.33329491539e-1)
    a = p * z * t + t + (F32(0.78539816339744830962) if big else F32(0.0))
    return F32(1.57079632679489661923) - a if ay > ax else a


@kernel(inline="always")
def atan2f(y, x):
    """atan2(y, x) [rad], float32: :func:`atan_first_quadrant` of |y|, |x|, then the quadrant by
    selects."""
    a = atan_first_quadrant(abs(y), abs(x))
    a = F32(3.14159265358979323846) - a if x < F32(0.0) else a
    return -a if y < F32(0.0) else a


N_SIE = 18  # length of a row of sie_row_coefficients


def sie_row_coefficients(lens: Dict[str, np.ndarray]) -> np.ndarray:
    """Per-row constants of :func:`sie_source_position`: (B, 18) float32 from validated lens
    arrays (B,) theta_E, e1, e2, center_x, center_y [arcsec], gamma1, gamma2.

    Columns: xa, xb, xc, ya, yb, yc (lens frame: q x' = xa x + xb y + xc, y' = ya x + yb y + yc),
    eq = e/q, e, qs = q^2 s, q^2, sxx, sxy, syx, syy (the shear part of the map, (I - Gamma)),
    mxa, mxb, mya, myb (the deflection alpha = (mxa A + mxb B, mya A + myb B) in the sky frame).
    lenstronomy conventions: SIE = NIE with core s = 1e-10"/sqrt(q); phi, q from e1/e2
    (:func:`dhs_gen.lensing.geometry.ellipticity_to_phi_q`, q capped at 1 - 1e-6); the
    product-average Einstein radius, b = theta_E sqrt(q); e = sqrt(1 - q^2); SHEAR about the
    origin (the stamp centre), not the lens centre. Computed in float64, stored as float32.
    """
    phi, q = ellipticity_to_phi_q(lens["e1"], lens["e2"])
    q = np.minimum(q, Q_MAX)
    e = np.sqrt(1.0 - q**2)
    amp = lens["theta_E"] * np.sqrt(q) / e  # b / e
    s = NIE_CORE_ARCSEC / np.sqrt(q)
    cos, sin = np.cos(phi), np.sin(phi)
    cx, cy, g1, g2 = lens["center_x"], lens["center_y"], lens["gamma1"], lens["gamma2"]
    h = 0.5 * np.log(2.0)  # atanh(u) = h log2((1 + u) / (1 - u))
    cols = [q * cos, q * sin, -q * (cx * cos + cy * sin), -sin, cos, -(cy * cos - cx * sin), e / q, e, q**2 * s,
            q**2, 1.0 - g1, -g2, -g2, 1.0 + g1, amp * cos, -amp * h * sin, amp * sin, amp * h * cos]
    return np.stack(np.broadcast_arrays(*cols), axis=1).astype(F32)


@kernel(inline="always")
def sie_angles(c, x, y):
    """The two transcendental arguments of the SIE deflection at (x, y) [arcsec]: (A, w) with
    A = atan2(e x', psi + s) [rad] and w, |w| = (d + e|y'|)/(d - e|y'|) - 1 >= 0 with the sign of
    y', so that atanh(e y' / d) = sign(w) (ln 2 / 2) log2(1 + |w|), d = psi + q^2 s.

    No cancellation: (d + e y')(d - e y') = d^2 - e^2 y'^2 = P = q^2 x'^2 + q^2 y'^2 + q^2 s
    (2 psi + q^2 s) > 0 (as e^2 = 1 - q^2), so |w| = 2 e|y'| (d + e|y'|) / P from sums of
    positive terms. ``c``: a row of :func:`sie_row_coefficients`."""
    xq = c[0] * x + c[1] * y + c[2]
    yr = c[3] * x + c[4] * y + c[5]
    psi = np.sqrt(xq * xq + yr * yr)
    d = psi + c[8]
    ay = abs(c[7] * yr)
    p = xq * xq + c[9] * (yr * yr) + c[8] * (psi + d)
    w = (ay + ay) * (d + ay) / p
    a = atan_first_quadrant(abs(c[6] * xq), d)  # atan2(e x', d) with d > 0
    return (-a if xq < F32(0.0) else a), (-w if yr < F32(0.0) else w)


@kernel(inline="always")
def sie_log_ratio(w):
    """log2((d + e y')/(d - e y')) = sign(w) log2(1 + |w|) from the ``w`` of :func:`sie_angles`."""
    b = log2_1pf(abs(w))
    return -b if w < F32(0.0) else b


@kernel(inline="always")
def sie_beta(c, x, y, a, b):
    """beta = (I - Gamma) theta - alpha [arcsec] from A = a of :func:`sie_angles` and
    b = :func:`sie_log_ratio`."""
    bx = c[10] * x + c[11] * y - (c[14] * a + c[15] * b)
    by = c[12] * x + c[13] * y - (c[16] * a + c[17] * b)
    return bx, by


@kernel(inline="always")
def sie_source_position(c, x, y):
    """Source-plane position (beta_x, beta_y) [arcsec] of the image-plane point (x, y) [arcsec]
    under SIE + external shear, float32: beta = (I - Gamma) theta - alpha_SIE(theta).

    ``c``: one row (18,) float32 of :func:`sie_row_coefficients` (or the same as a tuple); x, y
    float32 (pixel (row, col) of an H x W stamp is at x = (col - (W-1)/2) pixel_scale,
    y = (row - (H-1)/2) pixel_scale). In the lens frame (x', y') rotated by phi about the lens
    centre, with psi = sqrt(q^2 x'^2 + y'^2) (Keeton & Kochanek 1998; lenstronomy NIE, core s):
    alpha_x' = (b/e) atan2(e x', psi + s) and alpha_y' = (b/e) atanh(e y' / (psi + q^2 s))
    = (b/e) (ln 2 / 2) log2((d + e y')/(d - e y')) with d = psi + q^2 s (> e |y'|), evaluated
    without cancellation (:func:`sie_angles`) and as log2(1 + |w|) (no loss of precision as
    q -> 1, e -> 0, nor near the axis where e|y'| -> d); then rotated back by phi. psi + s and
    psi + q^2 s are the same float32 number except at psi = 0, where both give a zero
    deflection. :func:`sie_angles`, :func:`sie_log_ratio` and :func:`sie_beta` are this map split
    where a vectorised loop is best cut (:func:`lensed_sersic_block`).
    """
    a, w = sie_angles(c, x, y)
    return sie_beta(c, x, y, a, sie_log_ratio(w))


EXP2_FLOOR = -120.0  # Sérsic exponent floor: 2^-120 ~ 7.5e-37, above float32's smallest normal 2^-126


def sersic_row_coefficients(source: Dict[str, np.ndarray]) -> np.ndarray:
    """Per-row constants of :func:`sersic_unit`: (B, 9) float32 from validated source arrays (B,)
    R_sersic, n_sersic, e1, e2, center_x, center_y [arcsec, source plane].

    Columns: ua, ub, uc, va, vb, vc (the source-ellipse coordinates in units of R_sersic,
    U = ua bx + ub by + uc, V = va bx + vb by + vc; lenstronomy's area-preserving e1/e2 map, so
    R = R_sersic sqrt(U^2 + V^2) is the product-average radius), r2min = (1e-4" / R_sersic)^2
    (lenstronomy floors R at 1e-4"), 1/(2n), b_n / ln 2 (lenstronomy's b_n = 1.9992 n - 0.3271).
    """
    from dhs_gen.lensing.geometry import sersic_b_n

    e1, e2 = source["e1"], source["e2"]
    r_s = np.maximum(source["R_sersic"], 1e-4)
    norm = np.sqrt(np.maximum(np.abs(1.0 - e1**2 - e2**2), 1e-6)) * r_s
    p1, p2, p3 = (1.0 - e1) / norm, e2 / norm, (1.0 + e1) / norm
    scx, scy = source["center_x"], source["center_y"]
    cols = [p1, -p2, -p1 * scx + p2 * scy, -p2, p3, -p3 * scy + p2 * scx, (1e-4 / r_s) ** 2,
            0.5 / source["n_sersic"], sersic_b_n(source["n_sersic"]) / np.log(2.0)]
    return np.stack(np.broadcast_arrays(*cols), axis=1).astype(F32)


@kernel(inline="always")
def sersic_radius2(s, bx, by):
    """(R/R_sersic)^2 = max(U^2 + V^2, r2min) at the source-plane point (bx, by) [arcsec] (``s``: a
    row of :func:`sersic_row_coefficients`)."""
    u = s[0] * bx + s[1] * by + s[2]
    v = s[3] * bx + s[4] * by + s[5]
    return max(u * u + v * v, s[6])


@kernel(inline="always")
def sersic_log_radius(s, r2):
    """g = log2((R/R_sersic)^(1/n)) = log2(r2) / (2n) from r2 = :func:`sersic_radius2`."""
    return s[7] * log2f_normal(r2)  # r2 >= r2min > 2^-126


@kernel(inline="always")
def sersic_from_radius_power(s, p):
    """I = 2^((b_n / ln 2)(1 - p)) from p = (R/R_s)^(1/n) = :func:`exp2f_normal` of
    :func:`sersic_log_radius`, the exponent floored at -120 (no denormals: they are ~10x slower
    and carry no flux). g = log2((R/R_s)^(1/n)) lies in [-126, 127] for any R in [1e-4", 1e30"]
    and n >= 0.2 (above, 2^g is clamped to 2^127: the profile is 0 either way)."""
    return exp2f_normal(max(s[8] - s[8] * p, F32(EXP2_FLOOR)))


@kernel(inline="always")
def sersic_unit(s, bx, by):
    """lenstronomy SERSIC_ELLIPSE with amp = 1 at the source-plane point (bx, by) [arcsec]:
    I = exp(-b_n ((R/R_sersic)^(1/n) - 1)) = 2^((b_n/ln 2)(1 - 2^(log2((R/R_sersic)^2) / (2n)))),
    float32; ``s``: one row (9,) of :func:`sersic_row_coefficients`."""
    return sersic_from_radius_power(s, exp2f_normal(sersic_log_radius(s, sersic_radius2(s, bx, by))))


@kernel(inline="always")
def sie_tuple(c):
    """A row of :func:`sie_row_coefficients` as a tuple of scalars (kept in registers by a loop)."""
    return (c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8], c[9], c[10], c[11], c[12], c[13], c[14],
            c[15], c[16], c[17])


@kernel(inline="always")
def _sersic_tuple(c):
    """A row of :func:`sersic_row_coefficients` as a tuple of scalars."""
    return (c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8])


@kernel
def faint_tail_cut(values, tail):
    """The brightness (float32) below which the values (P,) (>= 0) together hold at most ``tail``
    of their sum: the lower edge 2^(e-1) of the faintest power-of-two bin [2^(e-1), 2^e) that a
    cut must keep (bins by the float32 exponent, e clipped to [-200, 55]; sums in float64); 0
    when nothing may be cut (the faintest bin is needed, or the values are all 0)."""
    parts = np.zeros((4, 256), dtype=np.float64)  # four interleaved partial sums: no chain through one bin
    n = values.size
    for p in range(n):
        v = values[p]
        e = min(((float_bits(v) >> 23) & 0xFF) - 126, 55)  # frexp exponent (zeros weigh nothing)
        parts[p & 3, e + 200] += v
    sums = np.empty(256, dtype=np.float64)
    total = 0.0
    for b in range(256):
        sums[b] = (parts[0, b] + parts[1, b]) + (parts[2, b] + parts[3, b])
        total += sums[b]
    first = -1
    below = 0.0
    for b in range(256):  # the faintest bin kept: the last one with at most tail x total below it
        if below <= tail * total:
            first = b
        below += sums[b]
    if first <= 0 or total <= 0:
        return F32(0.0)
    return np.float32(2.0 ** (first - 201))


@kernel
def dilate_or_near(lit, xs, ys, cx, cy, radius2, keep):
    """keep (H, W) bool = any lit (H, W) bool pixel in the 3 x 3 neighbourhood, or the pixel centre
    (xs[col], ys[row]) [arcsec, float64] within sqrt(radius2) of (cx, cy) [arcsec]."""
    h, w = lit.shape
    rows = np.empty((h, w), dtype=np.bool_)
    for i in range(h):
        src, dst = lit[i], rows[i]
        dst[0] = src[0] | src[min(1, w - 1)]
        dst[w - 1] = src[w - 1] | src[max(w - 2, 0)]
        for j in range(1, w - 1):
            dst[j] = src[j - 1] | src[j] | src[j + 1]
    for i in range(h):
        up, mid, down = rows[max(i - 1, 0)], rows[i], rows[min(i + 1, h - 1)]
        dy2 = (ys[i] - cy) ** 2
        dst = keep[i]
        for j in range(w):
            dst[j] = up[j] | mid[j] | down[j] | (dy2 + (xs[j] - cx) ** 2 < radius2)


STAGE_BLOCK = 256  # points per stage of lensed_sersic_block: the stage buffers stay in L1


@kernel(inline="always")
def lensed_sersic_block(lc, sc, xs, ys, n, dx, dy, acc, ta, tb):
    """acc[t] += the unit Sérsic ``sc`` lensed by ``lc`` at (xs[t] + dx, ys[t] + dy), t < n.

    :func:`sersic_unit` at :func:`sie_source_position`, evaluated in six loops over the points
    (angles; log2(1 + w); beta and the Sérsic radius; its log2; 2^g; the profile), each short
    enough for the CPU to overlap many points (one fused loop is bound by its ~200-instruction
    dependency chain, 2-3x slower; six loops measured ~1.15x faster than four); ``ta``, ``tb``
    (>= n,) float32 hold the intermediate values. The same arithmetic per point as the fused
    expression; the compiler may contract multiply-adds differently in the two forms (measured:
    equal to a relative 1e-5, tests/dhs_gen/lensing/test_kernels.py)."""
    for t in range(n):
        ta[t], tb[t] = sie_angles(lc, xs[t] + dx, ys[t] + dy)
    for t in range(n):
        tb[t] = sie_log_ratio(tb[t])
    for t in range(n):
        x, y = xs[t] + dx, ys[t] + dy
        bx, by = sie_beta(lc, x, y, ta[t], tb[t])
        ta[t] = sersic_radius2(sc, bx, by)
    for t in range(n):
        ta[t] = sersic_log_radius(sc, ta[t])
    for t in range(n):
        ta[t] = exp2f_normal(ta[t])
    for t in range(n):
        acc[t] += sersic_from_radius_power(sc, ta[t])


@kernel
def render_sie_sersic(lens_coef, src_coef, scale, centre_x, centre_y, radius2, xs, ys, offsets, tail, out):
    """Unconvolved SIE + shear lensed Sérsic images, written into ``out`` (B, H, W) float32
    [``scale`` units per pixel]: out = scale x the mean over s x s sub-pixels of
    :func:`sersic_unit` at :func:`sie_source_position`.

    Per row r: ``lens_coef[r]`` (:func:`sie_row_coefficients`), ``src_coef[r]``
    (:func:`sersic_row_coefficients`), ``scale[r]`` (float32: flux per amp x pixel area / s^2);
    lens centre ``centre_x/y[r]`` and ``radius2[r]`` [arcsec, arcsec^2] of the disc always
    supersampled. ``xs`` (W,), ``ys`` (H,) float64 pixel-centre coordinates [arcsec];
    ``offsets`` (s,) float32 sub-pixel offsets from a pixel centre [arcsec]; ``tail``: the light
    fraction a row may lose.

    1. the profile at every pixel centre; 2. :func:`faint_tail_cut` of those at ``tail``;
    3. pixels to integrate: :func:`dilate_or_near` of the centres at or above the cut;
    4. for each kept pixel the s x s sub-pixels, summed in order (dy outer, dx inner) in float32,
    the loops running over blocks of kept pixels (contiguous coordinates, so they vectorise;
    :func:`lensed_sersic_block`). Other pixels are 0. Scratch memory is allocated once per call;
    ``out`` is overwritten. Compiled with 512-bit vectors (:func:`prefer_512_bit_vectors`)."""
    prefer_512_bit_vectors()
    n, h, w = out.shape
    s = offsets.size
    npix = h * w
    xs32, ys32 = xs.astype(np.float32), ys.astype(np.float32)
    grid_x = np.empty(npix, dtype=np.float32)
    grid_y = np.empty(npix, dtype=np.float32)
    for i in range(h):
        for j in range(w):
            grid_x[i * w + j] = xs32[j]
            grid_y[i * w + j] = ys32[i]
    centres = np.empty(npix, dtype=np.float32)
    lit = np.empty((h, w), dtype=np.bool_)
    keep = np.empty((h, w), dtype=np.bool_)
    kx = np.empty(npix, dtype=np.float32)
    ky = np.empty(npix, dtype=np.float32)
    idx = np.empty(npix, dtype=np.int64)
    acc = np.empty(STAGE_BLOCK, dtype=np.float32)
    ta = np.empty(STAGE_BLOCK, dtype=np.float32)
    tb = np.empty(STAGE_BLOCK, dtype=np.float32)
    zero = np.float32(0.0)
    for r in range(n):
        lc = sie_tuple(lens_coef[r])
        sc = _sersic_tuple(src_coef[r])
        centres[:] = 0
        for k0 in range(0, npix, STAGE_BLOCK):
            k1 = min(k0 + STAGE_BLOCK, npix)
            lensed_sersic_block(lc, sc, grid_x[k0:k1], grid_y[k0:k1], k1 - k0, zero, zero, centres[k0:k1], ta, tb)
        cut = faint_tail_cut(centres, tail)
        for i in range(h):
            for j in range(w):
                lit[i, j] = centres[i * w + j] >= cut
        dilate_or_near(lit, xs, ys, centre_x[r], centre_y[r], radius2[r], keep)
        m = 0
        for i in range(h):
            for j in range(w):  # branch-free compaction of the kept pixels
                kx[m] = xs32[j]
                ky[m] = ys32[i]
                idx[m] = i * w + j
                m += np.int64(keep[i, j])
        flat = out[r].reshape(npix)
        flat[:] = 0
        f = scale[r]
        for k0 in range(0, m, STAGE_BLOCK):
            k1 = min(k0 + STAGE_BLOCK, m)
            acc[:] = 0
            for a in range(s):
                for b in range(s):
                    lensed_sersic_block(lc, sc, kx[k0:k1], ky[k0:k1], k1 - k0, offsets[b], offsets[a], acc, ta, tb)
            for k in range(k0, k1):
                flat[idx[k]] = acc[k - k0] * f


@kernel
def even_spectrum_product(half, image, scale, out):
    """out[b, c, f] = image[b, f] x scale[b, c] x half[min(f, ny - f), b C + c]: image spectra
    (B, ny, nx//2 + 1) times real kernel spectra even in f, given on rows f = 0..ny//2 as ``half``
    (ny//2 + 1, B C, nx//2 + 1) float32, and a per-row, per-band factor ``scale`` (B, C) float32
    (e.g. band fluxes). The complex arrays are passed as float32 views (real, imaginary
    interleaved): ``image`` (B, ny, 2 (nx//2 + 1)), ``out`` (B, C, ny, 2 (nx//2 + 1)), so that the
    products vectorise."""
    n, c, ny, nx2 = out.shape
    both = np.empty(nx2, dtype=np.float32)
    for b in range(n):
        for k in range(c):
            f_k = scale[b, k]
            for f in range(ny):
                src = half[min(f, ny - f), b * c + k]
                for g in range(nx2 // 2):  # the real spectrum for the real and imaginary parts
                    both[2 * g] = src[g] * f_k
                    both[2 * g + 1] = src[g] * f_k
                a_row = image[b, f]
                o_row = out[b, k, f]
                for g in range(nx2):
                    o_row[g] = a_row[g] * both[g]


@kernel
def is_point_symmetric(kernels):
    """True when every (..., K, K) kernel of the C-contiguous array ``kernels`` is symmetric under
    x -> -x and under y -> -y (exact comparison; stops at the first difference)."""
    k = kernels.shape[-1]
    flat = kernels.reshape(-1, k, k)
    for b in range(flat.shape[0]):
        m = flat[b]
        for i in range(k):
            for j in range(k):
                if m[i, j] != m[k - 1 - i, j] or m[i, j] != m[i, k - 1 - j]:
                    return False
    return True
