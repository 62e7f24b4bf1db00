"""A synthetic grid injection set scored by a scorer with a known analytic recovery curve.

Negatives score logit ~ N(0, 1); an injection with Einstein radius theta_E [arcsec] scores
``slope * (theta_E - theta_0) + N(0, 1)``, so above a cut c it is recovered with probability
``1 - Phi(c - slope * (theta_E - theta_0))``. Used by tests and benchmarks, never by the pipeline.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
from scipy.stats import norm

THETA_GRID = np.array([0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5], dtype=np.float32)
ZL_GRID = np.array([0.2, 0.3, 0.4, 0.5, 0.6], dtype=np.float32)


def analytic_completeness(theta_e, cut: float, slope: float = 2.0, theta_0: float = 1.0):
    """P(score > cut | theta_E) for the synthetic scorer."""
    return 1.0 - norm.cdf(cut - slope * (np.asarray(theta_e, dtype=np.float64) - theta_0))


def synthetic_selection_set(n_per_cell: int = 40, n_negatives: int = 20000, seed: int = 0,
                            models=("model-a",), slope: float = 2.0, theta_0: float = 1.0):
    """(injections [stamps columns], scores, negative scores) over the THETA_GRID x ZL_GRID grid."""
    rng = np.random.default_rng(seed)
    theta, zl = np.meshgrid(THETA_GRID, ZL_GRID, indexing="ij")
    theta = np.repeat(theta.ravel(), n_per_cell)
    zl = np.repeat(zl.ravel(), n_per_cell)
    n = theta.size
    ids = np.array([f"inj{i:07d}" for i in range(n)], dtype=object)
    fwhm = rng.uniform(0.9, 1.6, n).astype(np.float32)
    bad = np.where(rng.random(n) < 0.1, rng.uniform(0.25, 0.5, n), rng.uniform(0.0, 0.05, n)).astype(np.float32)
    injections = pa.table({
        "task_id": ids, "status": np.where(rng.random(n) < 0.02, "inject_failed", "ok"),
        "cutout_ok": rng.random(n) > 0.03, "bad_pixel_frac": bad,
        "artifact_profile": np.where(rng.random(n) < 0.1, "satellite_trail", "none"),
        "healpix_128": rng.integers(0, 12 * 128 * 128, n).astype(np.int64),
        "ra": rng.uniform(0, 360, n), "dec": rng.uniform(-20, 30, n),
        "theta_e_arcsec": theta.astype(np.float32), "z_l": zl.astype(np.float32),
        "z_s": np.full(n, 1.5, dtype=np.float32),
        "src_mag_r": rng.uniform(23, 26, n).astype(np.float32),
        "arc_snr_sum": rng.lognormal(2.5, 1.0, n).astype(np.float32),
        "arc_snr_max": rng.lognormal(1.5, 0.8, n).astype(np.float32),
        "psf_fwhm_used_r": fwhm, "psfsize_r": fwhm,
    })
    score_parts, neg_parts = [], []
    for model_id in models:
        logit = (slope * (theta - theta_0) + rng.standard_normal(n)).astype(np.float32)
        scored = rng.random(n) > 0.01  # a few injections never scored
        score_parts.append(pa.table({
            "id": ids[scored], "logit": logit[scored], "model_score": (1 / (1 + np.exp(-logit[scored]))).astype(np.float32),
            "model_id": np.full(scored.sum(), model_id), "status": np.full(scored.sum(), "ok"),
        }))
        neg = rng.standard_normal(n_negatives).astype(np.float32)
        neg_parts.append(pa.table({
            "id": np.array([f"neg{i:07d}" for i in range(n_negatives)], dtype=object), "logit": neg,
            "model_score": (1 / (1 + np.exp(-neg))).astype(np.float32),
            "model_id": np.full(n_negatives, model_id), "status": np.full(n_negatives, "ok"),
        }))
    return injections, pa.concat_tables(score_parts), pa.concat_tables(neg_parts)
