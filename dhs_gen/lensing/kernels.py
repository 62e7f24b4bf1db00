"""Compiled building blocks of the fast lensing engine: float32 math that vectorises, and the
SIE (+ shear) lens map of one point.

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

- ``exp2f(x)``: any x; 2^x for x in [-126, 128), 0 below -150 (denormals in between are
  approximate), +inf at and above 128.
- ``log2f(x)``: x > 0 (normal or subnormal); x = 0 gives a large negative value (about -150),
  not -inf (fast-math assumes no infinities); negative x is not defined.
- ``log2_1pf(w)``: log2(1 + w) for w > -1, accurate for small |w| too (log1p).
- ``atan2f(y, x)``: any finite y, x, the angle of (x, y) in [-pi, pi]; atan2f(0, 0) = 0 (the
  sign of a zero is not tracked: fast-math).

The SIE + shear map (:func:`sie_source_position`) reads its per-row constants from the
float32 vector of :func:`sie_row_coefficients`.
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


@kernel(inline="always")
def pow2i(i):
    """2^i as float32 for an integer i in [-126, 127] (the exponent field written directly)."""
    return bits_float((i + 127) << 23)


@kernel(inline="always")
def exp2f(x):
    """2^x, float32 (Cephes exp2f: x = i + f, |f| <= 1/2, a degree-6 polynomial for 2^f, then
    2^i as two exact powers of two so that i = -150..128 needs no branch)."""
    x = min(max(x, F32(-150.0)), F32(128.0))
    fi = np.float32(np.floor(x + F32(0.5)))
    f = x - fi
    p = F32(1.535336188319500e-4)
    p = p * f + F32(1.339887440266574e-3)
    p = p * f + F32(9.618437357674640e-3)
    p = p * f + F32(5.550332471162809e-2)
    p = p * f + F32(2.402264791363012e-1)
    p = p * f + F32(6.931472028550421e-1)
    p = p * f + F32(1.0)
    i = np.int32(fi)
    half = i >> 1
    return p * pow2i(half) * pow2i(i - half)


@kernel(inline="always")
def log2f(x):
    """log2(x), float32, x > 0 (Cephes logf: x = m 2^e with m in [sqrt(1/2), sqrt(2)), a degree-9
    polynomial in m - 1; subnormal x are scaled by 2^23 first)."""
    tiny = x < F32(1.17549435e-38)
    x = x * F32(8388608.0) if tiny else x  # 2^23: subnormal -> normal
    bits = float_bits(x)
    e = ((bits >> 23) & 0xFF) - 126
    m = bits_float((bits & 0x007FFFFF) | 0x3F000000)  # [0.5, 1)
    low = m < F32(0.707106781186547524)
    e = e - 1 if low else e
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
    r = y * log2e_m1 + m * log2e_m1 + y + m
    return r + (np.float32(e) - F32(23.0) if tiny else np.float32(e))


@kernel(inline="always")
def log2_1pf(w):
    """log2(1 + w), float32, w > -1, accurate also for small |w| (log1p): the rounding error of
    r = 1 + w, w - (r - 1), is added back to first order, (w - (r - 1)) / r / ln 2."""
    r = F32(1.0) + w
    return log2f(r) + (w - (r - F32(1.0))) / r * F32(1.44269504088896340736)


@kernel(inline="always")
def atan2f(y, x):
    """atan2(y, x) [rad], float32 (Cephes atanf on t = min/max(|x|, |y|) in [0, 1], reduced to
    |t'| <= tan(pi/8) by t' = (t - 1)/(t + 1) (+ pi/4), then the octant by selects)."""
    ax, ay = abs(x), abs(y)
    hi, lo = max(ax, ay), min(ax, ay)
    t = lo / hi if hi > F32(0.0) else F32(0.0)
    big = t > F32(0.41421356237309504880)
    t = (t - F32(1.0)) / (t + F32(1.0)) if big else t
    z = t * t
    p = F32(8.05374449538e-2)
    p = p * z - F32(1.38776856032e-1)
    p = p * z + F32(1.99777106478e-1)
    p = p * z - F32(3.33329491539e-1)
    a = p * z * t + t + (F32(0.78539816339744830962) if big else F32(0.0))
    a = F32(1.57079632679489661923) - a if ay > ax else a
    a = F32(3.14159265358979323846) - a if x < F32(0.0) else a
    return -a if y < F32(0.0) else a


N_SIE = 17  # length of a row of sie_row_coefficients


def sie_row_coefficients(lens: Dict[str, np.ndarray]) -> np.ndarray:
    """Per-row constants of :func:`sie_source_position`: (B, 17) float32 from validated lens
    arrays (B,) theta_E, e1, e2, center_x, center_y [arcsec], gamma1, gamma2.

    Columns: xa, xb, xc, ya, yb, yc (lens frame: q x' = xa x + xb y + xc, y' = ya x + yb y + yc),
    eq = e/q, e, qs = q^2 s, sxx, sxy, syx, syy (the shear part of the map, (I - Gamma)),
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
            1.0 - g1, -g2, -g2, 1.0 + g1, amp * cos, -amp * h * sin, amp * sin, amp * h * cos]
    return np.stack(np.broadcast_arrays(*cols), axis=1).astype(F32)


@kernel(inline="always")
def sie_source_position(c, x, y):
    """Source-plane position (beta_x, beta_y) [arcsec] of the image-plane point (x, y) [arcsec]
    under SIE + external shear, float32: beta = (I - Gamma) theta - alpha_SIE(theta).

    ``c``: one row (17,) float32 of :func:`sie_row_coefficients`; x, y float32 (pixel (row, col)
    of an H x W stamp is at x = (col - (W-1)/2) pixel_scale, y = (row - (H-1)/2) pixel_scale).
    In the lens frame (x', y') rotated by phi about the lens centre, with psi = sqrt(q^2 x'^2 +
    y'^2) (Keeton & Kochanek 1998; lenstronomy NIE, core s): alpha_x' = (b/e) atan2(e x', psi + s)
    and alpha_y' = (b/e) atanh(e y' / (psi + q^2 s)) = (b/e) (ln 2 / 2) log2((d + e y')/(d - e y'))
    with d = psi + q^2 s (> e |y'|), evaluated as log2(1 + w), w = 2 e y' / (d - e y') (no loss
    of precision as q -> 1, e -> 0); then rotated back by phi. psi + s and psi + q^2 s are the
    same float32 number except at psi = 0, where both give a zero deflection.
    """
    xq = c[0] * x + c[1] * y + c[2]
    yr = c[3] * x + c[4] * y + c[5]
    d = np.sqrt(xq * xq + yr * yr) + c[8]
    a = atan2f(c[6] * xq, d)
    ey = c[7] * yr
    b = log2_1pf((ey + ey) / (d - ey))  # log2 of 1 + 2 e y'/(d - e y'), exact also for e -> 0 (q -> 1)
    bx = c[9] * x + c[10] * y - (c[13] * a + c[14] * b)
    by = c[11] * x + c[12] * y - (c[15] * a + c[16] * b)
    return bx, by
