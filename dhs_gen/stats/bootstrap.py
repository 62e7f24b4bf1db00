"""Bootstrap confidence intervals: i.i.d. and HEALPix sky-region (block) resampling.

Every replicate is expressed as integer multiplicities per sample (how often each row was
drawn), so any statistic that accepts ``sample_weight`` (all of :mod:`dhs_gen.stats.metrics`)
is evaluated without copying data. Region bootstrap draws sky pixels with replacement and gives
each row its pixel's multiplicity, which keeps the spatial correlation of neighbouring sources
inside one block. Seeded with ``numpy.random.default_rng(seed)``: same seed, same intervals.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable, Dict, Iterator

import numpy as np

Statistic = Callable[..., float]  # fn(*arrays, sample_weight=w) -> float


@dataclass(frozen=True)
class BootstrapCI:
    """Point estimate on the full data, percentile interval, and replicate spread."""

    estimate: float
    lo: float
    hi: float
    std: float
    n_boot: int
    n_valid: int
    level: float
    method: str

    def as_dict(self) -> Dict[str, float]:
        return asdict(self)


def iid_multiplicities(n: int, n_boot: int, seed: int, strata=None) -> Iterator[np.ndarray]:
    """Yield ``n_boot`` length-``n`` draw-count vectors of an i.i.d. bootstrap; draws stay within
    each stratum when ``strata`` is given (pass the labels to keep the class counts fixed)."""
    rng = np.random.default_rng(seed)
    groups = [np.arange(n)]
    if strata is not None:
        strata = np.asarray(strata).ravel()
        if strata.size != n:
            raise ValueError(f"strata length {strata.size} != n = {n}")
        groups = [np.flatnonzero(strata == label) for label in np.unique(strata)]
    for _ in range(n_boot):
        counts = np.zeros(n, dtype=np.float64)
        for idx in groups:
            counts[idx] = np.bincount(rng.integers(0, idx.size, idx.size), minlength=idx.size)
        yield counts


def region_multiplicities(regions, n_boot: int, seed: int) -> Iterator[np.ndarray]:
    """Yield ``n_boot`` per-row draw counts of a block bootstrap over region labels (e.g. HEALPix
    pixels): each replicate draws as many regions as there are, with replacement."""
    regions = np.asarray(regions).ravel()
    uniq, inverse = np.unique(regions, return_inverse=True)
    if uniq.size < 2:
        raise ValueError(f"region bootstrap needs >= 2 distinct regions, got {uniq.size}")
    rng = np.random.default_rng(seed)
    for _ in range(n_boot):
        per_region = np.bincount(rng.integers(0, uniq.size, uniq.size), minlength=uniq.size)
        yield per_region[inverse].astype(np.float64)


def healpix_regions(ra_deg, dec_deg, nside: int = 16, nest: bool = True) -> np.ndarray:
    """HEALPix pixel index (NESTED by default) of each position; ra/dec in degrees."""
    import healpy as hp

    ra = np.asarray(ra_deg, dtype=np.float64)
    dec = np.asarray(dec_deg, dtype=np.float64)
    if np.any(~np.isfinite(ra) | ~np.isfinite(dec)) or np.any(np.abs(dec) > 90):
        raise ValueError("ra/dec must be finite degrees with |dec| <= 90")
    return hp.ang2pix(nside, ra, dec, nest=nest, lonlat=True)


def _ci(fn: Statistic, arrays, weights, multiplicities, level: float, method: str) -> BootstrapCI:
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    w0 = np.ones(arrays[0].shape[0]) if weights is None else np.asarray(weights, dtype=np.float64)
    estimate = float(fn(*arrays, sample_weight=w0))
    # Rows in descending order of the second array (the scores of a metric fn(y, s)): every
    # replicate keeps that order, so the metric's stable sort runs on presorted data (~3x faster).
    order = np.argsort(-np.asarray(arrays[1], dtype=np.float64), kind="stable") if len(arrays) > 1 else None
    if order is not None:
        arrays = [a[order] for a in arrays]
        w0 = w0[order]
    reps = []
    for m in multiplicities:
        if order is not None:
            m = m[order]
        keep = m > 0
        try:
            reps.append(fn(*(a[keep] for a in arrays), sample_weight=(m * w0)[keep]))
        except ValueError:  # statistic undefined on this replicate (e.g. one class only)
            reps.append(np.nan)
    reps = np.asarray(reps, dtype=np.float64)
    valid = reps[np.isfinite(reps)]
    if valid.size == 0:
        return BootstrapCI(estimate, np.nan, np.nan, np.nan, len(reps), 0, level, method)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(valid, [alpha, 1.0 - alpha])
    return BootstrapCI(estimate, float(lo), float(hi), float(np.std(valid, ddof=1)) if valid.size > 1 else 0.0,
                       len(reps), int(valid.size), level, method)


def _arrays(arrays):
    out = [np.asarray(a) for a in arrays]
    n = {a.shape[0] for a in out}
    if len(n) != 1:
        raise ValueError(f"arrays differ in length: {sorted(n)}")
    return out, n.pop()


def bootstrap_ci(fn: Statistic, *arrays, n_boot: int = 1000, seed: int = 0, level: float = 0.95,
                 sample_weight=None, strata=None) -> BootstrapCI:
    """Percentile i.i.d. bootstrap of ``fn(*arrays, sample_weight=w)``; ``strata`` resamples
    within groups (pass the labels to keep class balance)."""
    arrays, n = _arrays(arrays)
    mult = iid_multiplicities(n, n_boot, seed, strata)
    return _ci(fn, arrays, sample_weight, mult, level, "iid" if strata is None else "stratified")


def region_bootstrap_ci(fn: Statistic, *arrays, regions, n_boot: int = 1000, seed: int = 0,
                        level: float = 0.95, sample_weight=None) -> BootstrapCI:
    """Percentile block bootstrap resampling whole ``regions`` (e.g. :func:`healpix_regions`)."""
    arrays, n = _arrays(arrays)
    regions = np.asarray(regions).ravel()
    if regions.size != n:
        raise ValueError(f"regions length {regions.size} != {n} samples")
    mult = region_multiplicities(regions, n_boot, seed)
    return _ci(fn, arrays, sample_weight, mult, level, "region")


def paired_difference_ci(fn: Statistic, y, s_a, s_b, *, n_boot: int = 1000, seed: int = 0,
                         level: float = 0.95, regions=None, strata=None,
                         sample_weight=None) -> Dict[str, object]:
    """CI of fn(y, s_a) - fn(y, s_b) with the SAME resamples for both (e.g. ensemble vs best
    member). Returns {"a", "b", "difference"} as BootstrapCI dicts."""
    y, s_a, s_b = (np.asarray(a) for a in (y, s_a, s_b))
    _arrays((y, s_a, s_b))

    def draws():  # a fresh generator with the same seed: identical resamples for a, b and a - b
        if regions is not None:
            return region_multiplicities(regions, n_boot, seed)
        return iid_multiplicities(y.shape[0], n_boot, seed, strata)

    def diff(y_, a_, b_, sample_weight):
        return fn(y_, a_, sample_weight=sample_weight) - fn(y_, b_, sample_weight=sample_weight)

    method = "region" if regions is not None else ("iid" if strata is None else "stratified")
    out = {}
    for key, f, arrs in (("a", fn, (y, s_a)), ("b", fn, (y, s_b)), ("difference", diff, (y, s_a, s_b))):
        out[key] = _ci(f, arrs, sample_weight, draws(), level, method).as_dict()
    return out
