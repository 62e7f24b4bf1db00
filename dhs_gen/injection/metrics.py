"""Per-injection metrics from the noiseless injected light and the host's real noise.

Noise: per band, σ = 1.4826 · MAD of the host cutout's pixels at radius ≥ ``OUTER_FRACTION`` ×
cutout side from its centre (the outer annulus, mostly sky; a checkerboard half of its pixels,
~3200 for a 101-px cutout, so σ is known to ~2%), in nanomaggies per pixel.

* ``arc_snr_sum`` (r band) = Σ_A s / (σ_r √|A|), A = pixels where the noiseless arc s ≥ 10% of its
  peak (the arc's aperture; sky-limited noise, host noise only);
* ``arc_snr_max`` = max s / σ_r (the earlier pipeline's per-pixel ``arc_snr``);
* ``lensed_hlr_arcsec``: radius about the arc's light centroid enclosing half the r-band arc flux;
* ``magnification``: Σ arc_r / unlensed flux_r (stamp flux ratio with the same PSF; light falling
  outside the stamp is not counted);
* ``lensed_mag_b`` = 22.5 − 2.5 log10 Σ arc_b (AB);
* ``n_images``: images of the source centre (point-source multiplicity), by triangle mapping
  on a half-pixel image-plane grid.
"""
from __future__ import annotations

from typing import Dict

import numpy as np

from dhs_gen.units import nmgy_to_mag

OUTER_FRACTION = 0.35
ARC_APERTURE_FRACTION = 0.1
MAD_TO_SIGMA = 1.4826


def outer_sigma(images: np.ndarray, outer_fraction: float = OUTER_FRACTION) -> np.ndarray:
    """(B, C) robust noise σ [nmgy/pixel] of (B, C, H, W) host cutouts from their outer annulus.

    Non-finite pixels are ignored; a band with no finite outer pixel gets NaN.
    """
    size = images.shape[-1]
    axis = np.arange(size) - (size - 1) / 2.0
    outer = np.hypot(axis[None, :], axis[:, None]) >= outer_fraction * size
    outer &= (np.arange(size)[None, :] + np.arange(size)[:, None]) % 2 == 0  # checkerboard: half the pixels
    index = np.flatnonzero(outer)
    index = index[: len(index) - (1 - len(index) % 2)]  # an odd count: the median is one order statistic
    pix = images.reshape(images.shape[:-2] + (-1,))[..., index].astype(np.float32)
    finite = np.isfinite(pix).all(axis=-1).all(axis=-1)
    out = np.empty(pix.shape[:2])
    if finite.any():
        out[finite] = MAD_TO_SIGMA * _median(np.abs(pix[finite] - _median(pix[finite])[..., None]))
    if (~finite).any():
        p = pix[~finite]
        with np.errstate(all="ignore"):
            mad = np.nanmedian(np.abs(p - np.nanmedian(p, axis=-1, keepdims=True)), axis=-1)
        out[~finite] = MAD_TO_SIGMA * mad
    return out


def _median(values: np.ndarray) -> np.ndarray:
    """Median along the last axis of an odd-length array (one partition, no averaging)."""
    mid = values.shape[-1] // 2
    return np.partition(values, mid, axis=-1)[..., mid]


def arc_metrics(arc: np.ndarray, sigma_r: np.ndarray, src_flux_r: np.ndarray,
                pixel_scale: float) -> Dict[str, np.ndarray]:
    """Metrics of noiseless arcs (B, 3, H, W) [nmgy] given the r-band host σ (B,) [nmgy]."""
    arc = arc.astype(np.float64)
    r = arc[:, 1]
    peak = r.reshape(len(r), -1).max(axis=1)
    aperture = r >= ARC_APERTURE_FRACTION * peak[:, None, None]
    aperture &= peak[:, None, None] > 0
    n_ap = aperture.sum(axis=(1, 2))
    signal = np.where(aperture, r, 0.0).sum(axis=(1, 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        snr_sum = np.where(n_ap > 0, signal / (sigma_r * np.sqrt(n_ap)), 0.0)
        snr_max = np.maximum(peak, 0.0) / sigma_r
        totals = arc.sum(axis=(2, 3))
        mags = nmgy_to_mag(np.where(totals > 0, totals, np.nan))
        magnification = totals[:, 1] / src_flux_r
    return {"arc_snr_sum": snr_sum, "arc_snr_max": snr_max, "magnification": magnification,
            "lensed_hlr_arcsec": half_light_radius(r) * pixel_scale,
            **{f"lensed_mag_{b}": mags[:, i] for i, b in enumerate("grz")}}


def half_light_radius(images: np.ndarray) -> np.ndarray:
    """(B,) radius [pixels] about each image's light centroid enclosing half its (positive) flux."""
    flux = np.clip(images, 0.0, None)
    b, h, w = flux.shape
    total = flux.sum(axis=(1, 2))
    rows, cols = np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64)
    safe = np.where(total > 0, total, 1.0)
    cy = (flux.sum(axis=2) * rows).sum(axis=1) / safe
    cx = (flux.sum(axis=1) * cols).sum(axis=1) / safe
    radius = np.hypot(cols[None, None, :] - cx[:, None, None], rows[None, :, None] - cy[:, None, None])
    radius = radius.reshape(b, -1)
    order = np.argsort(radius, axis=1)
    cum = np.cumsum(np.take_along_axis(flux.reshape(b, -1), order, axis=1), axis=1)
    k = np.argmax(cum >= 0.5 * total[:, None], axis=1)
    hlr = np.take_along_axis(radius, order, axis=1)[np.arange(b), k]
    return np.where(total > 0, hlr, np.nan)


def count_images(lens: Dict[str, np.ndarray], src_x: np.ndarray, src_y: np.ndarray, step: float = 0.1,
                 extent: float = 2.5, chunk: int = 256) -> np.ndarray:
    """(B,) number of image-plane positions mapping onto each source centre (x, y) [arcsec].

    The lens equation of SIE + shear is scale-free, so positions are measured in units of θ_E
    (grid ± ``extent`` θ_E about the lens centre, spacing ``step`` θ_E). Triangle mapping: the
    grid's triangles are mapped to the source plane and those containing the source point are
    counted. Triangles with a vertex within 0.2 θ_E of the lens centre are skipped (the singular
    SIE core has no image but maps onto a large source-plane triangle).
    """
    from dhs_gen.lensing.fast import ray_trace

    theta = np.asarray(lens["theta_E"], dtype=np.float64)
    n_side = int(np.ceil(2 * extent / step)) + 1
    axis = (np.arange(n_side) - (n_side - 1) / 2.0) * step
    gx, gy = (g.ravel() for g in np.meshgrid(axis, axis))
    near = np.hypot(gx, gy) < 0.2
    v00 = (np.arange(n_side - 1)[:, None] * n_side + np.arange(n_side - 1)[None, :]).ravel()
    triangles = [(v00, v00 + 1, v00 + n_side + 1), (v00, v00 + n_side + 1, v00 + n_side)]
    out = np.zeros(len(theta), dtype=np.int64)
    for start in range(0, len(theta), chunk):
        sl = slice(start, start + chunk)
        t = theta[sl]
        cx, cy = np.asarray(lens["center_x"])[sl] / t, np.asarray(lens["center_y"])[sl] / t
        unit = {"theta_E": np.ones_like(t), "e1": lens["e1"][sl], "e2": lens["e2"][sl], "center_x": np.zeros_like(t),
                "center_y": np.zeros_like(t), "gamma1": lens["gamma1"][sl], "gamma2": lens["gamma2"][sl]}
        # shear acts about the stamp origin: shift it into the source offset of a centred lens
        g1, g2 = np.asarray(lens["gamma1"])[sl], np.asarray(lens["gamma2"])[sl]
        sx = np.asarray(src_x)[sl] / t - cx + (g1 * cx + g2 * cy)
        sy = np.asarray(src_y)[sl] / t - cy + (g2 * cx - g1 * cy)
        bx, by = ray_trace(unit, gx, gy)
        px = bx - sx[:, None].astype(np.float32)
        py = by - sy[:, None].astype(np.float32)
        hits = []
        for a, b, c in triangles:
            # the source point (the origin after the shift) is inside a mapped triangle iff the
            # three edge cross products share a sign
            d1 = px[:, a] * py[:, b] - py[:, a] * px[:, b]
            d2 = px[:, b] * py[:, c] - py[:, b] * px[:, c]
            d3 = px[:, c] * py[:, a] - py[:, c] * px[:, a]
            inside = ((d1 > 0) & (d2 > 0) & (d3 > 0)) | ((d1 < 0) & (d2 < 0) & (d3 < 0))
            hits.append(inside & ~(near[a] | near[b] | near[c])[None, :])
        hits = np.concatenate(hits, axis=1)
        count = np.zeros(len(t), dtype=np.int64)
        for i in np.flatnonzero(hits.any(axis=1)):
            count[i] = _clusters(np.flatnonzero(hits[i]) % len(v00), n_side - 1)
        out[sl] = count
    return out


def _clusters(cells: np.ndarray, n_cells_side: int, link: int = 1) -> int:
    """Number of groups of grid cells (flat indices) linked within ``link`` cells (Chebyshev).

    Triangles folded across a critical curve next to a true image are merged with it."""
    rows, cols = np.divmod(cells, n_cells_side)
    label = -np.ones(len(cells), dtype=np.int64)
    groups = 0
    for i in range(len(cells)):
        if label[i] >= 0:
            continue
        label[i] = groups
        stack = [i]
        while stack:
            j = stack.pop()
            close = (np.maximum(np.abs(rows - rows[j]), np.abs(cols - cols[j])) <= link) & (label < 0)
            label[close] = groups
            stack.extend(np.flatnonzero(close).tolist())
        groups += 1
    return groups
