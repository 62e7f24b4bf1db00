"""Synthetic paired injection stamps and toy models for the evaluation tests (numpy, seeded)."""
from __future__ import annotations

import numpy as np

from dhs_gen import PIXEL_SCALE_ARCSEC
from training.eval.gates import annulus_masks, radius_grid

SIZE = 48
FWHM = 1.2  # arcsec


def make_pairs(n=160, seed=0, core_shortcut=0.0, arc_amp=0.4, size=SIZE):
    """(pos, ctrl, hardneg, theta_e, fwhm): Gaussian hosts with noise; positives add a smooth
    ring at theta_E; hard negatives shuffle the arc light within its annulus (one permutation
    for all bands); ``core_shortcut`` brightens positive hosts' cores by that fraction."""
    rng = np.random.default_rng(seed)
    r = radius_grid(size, size)
    theta = rng.choice([2.6, 3.0, 1.0], n)  # arcsec; x = 2.17, 2.5, 0.83
    fwhm = np.full(n, FWHM)
    amp = rng.lognormal(0.0, 0.5, n)[:, None, None, None] * np.array([0.6, 1.0, 1.4])[None, :, None, None]
    host = amp * np.exp(-0.5 * (r[None, None] / rng.uniform(2, 8, n)[:, None, None, None]) ** 2)
    ctrl = (host + rng.normal(0, 0.02, (n, 3, size, size))).astype(np.float32)
    sig_px = FWHM / 2.3548 / PIXEL_SCALE_ARCSEC
    th_px = theta[:, None, None] / PIXEL_SCALE_ARCSEC
    yy, xx = np.mgrid[0:size, 0:size] - (size - 1) / 2.0
    dphi = np.angle(np.exp(1j * (np.arctan2(yy, xx)[None] - rng.uniform(0, 2 * np.pi, n)[:, None, None])))
    ring = arc_amp * np.exp(-0.5 * ((r[None] - th_px) / sig_px) ** 2 - 0.5 * (dphi / 0.08) ** 2)  # arcs
    arc = (ring[:, None] * np.array([0.8, 1.0, 0.9])[None, :, None, None]).astype(np.float32)
    pos = ctrl + arc
    if core_shortcut:
        pos = pos + (core_shortcut * host * (r < 5)[None, None]).astype(np.float32)
    masks = annulus_masks(pos.shape, theta, fwhm)
    hardneg = ctrl.copy()
    for i in range(n):
        idx = np.flatnonzero(masks[i].ravel())
        perm = rng.permutation(idx)
        flat = hardneg[i].reshape(3, -1)
        flat[:, idx] += arc[i].reshape(3, -1)[:, perm]
    return pos.astype(np.float32), ctrl, hardneg.astype(np.float32), theta, fwhm


def ring_filter_model(thetas=(1.0, 2.6, 3.0), threshold=0.6, sectors=24, raw=False):
    """A 'good' model: best matched filter for a compact arc over ring radii ``thetas``
    (arcsec) and azimuthal sectors, each zero-mean against a smooth (quadratic in r) host
    inside its sector of the annulus, so shuffled arc light (spread over the annulus) scores low."""
    r = radius_grid(SIZE, SIZE)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] - (SIZE - 1) / 2.0
    sector = np.floor((np.arctan2(yy, xx) + np.pi) / (2 * np.pi) * sectors).astype(int) % sectors
    sig_px = FWHM / 2.3548 / PIXEL_SCALE_ARCSEC
    filters = []
    for th in thetas:
        ann = annulus_masks((1, 3, SIZE, SIZE), [th], [FWHM])[0]
        prof = np.exp(-0.5 * ((r - th / PIXEL_SCALE_ARCSEC) / sig_px) ** 2)
        for k in range(sectors):
            mask = ann & ((sector == k) | (sector == (k + 1) % sectors))
            basis = np.stack([np.ones(mask.sum()), r[mask], r[mask] ** 2], axis=1)
            coef, *_ = np.linalg.lstsq(basis, prof[mask], rcond=None)
            filt = np.zeros_like(prof)
            filt[mask] = prof[mask] - basis @ coef
            filters.append(filt / np.sqrt((filt**2).sum()))
    filters = np.stack(filters)  # (T*S, H, W)

    def score(images, idx=None):
        resp = np.einsum("bhw,thw->bt", images.sum(axis=1), filters).max(axis=1)
        return resp if raw else 1.0 / (1.0 + np.exp(-(resp - threshold) / 0.03))

    return score


def pixel_excess_model(threshold=0.5, raw=False):
    """A 'bad' model: the brightest pixel above its ring's median at 3-17 px. It ignores
    morphology, so shuffled arc light (same pixel values) fires it just like an arc."""
    r = radius_grid(SIZE, SIZE)
    ring = np.floor(r).astype(int)
    sel = (r >= 3) & (r < 17)

    def score(images, idx=None):
        img = images.sum(axis=1)
        med = np.stack([np.median(img[:, ring == k], axis=1) for k in range(ring.max() + 1)], axis=1)
        resp = (img - med[:, ring])[:, sel].max(axis=1)
        return resp if raw else 1.0 / (1.0 + np.exp(-(resp - threshold) / 0.03))

    return score
