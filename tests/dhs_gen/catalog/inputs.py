"""Synthetic Tractor rows for the catalogue tests (stand-in until the survey mock catalogue lands)."""
from __future__ import annotations

import numpy as np
import pyarrow as pa


def synthetic_tractor(n: int, seed: int = 0, ra0: float = 150.0, dec0: float = 2.0, width_deg: float = 2.0,
                      at=None) -> pa.Table:
    """``n`` Tractor-like rows in a patch (psfdepth as inverse variance, like sweeps); ``at`` =
    (ra, dec) arrays of extra galaxies placed 0.5" from given positions (e.g. lenses)."""
    rng = np.random.default_rng(seed)
    ra = ra0 + rng.uniform(-width_deg / 2, width_deg / 2, n)
    dec = dec0 + rng.uniform(-width_deg / 2, width_deg / 2, n)
    if at is not None:
        ra = np.concatenate([ra, np.asarray(at[0]) + 0.5 / 3600.0])
        dec = np.concatenate([dec, np.asarray(at[1])])
    m = len(ra)
    types = rng.choice(["SER", "DEV", "REX", "EXP", "PSF"], m, p=[0.3, 0.25, 0.3, 0.1, 0.05])
    cols = {
        "brickname": np.array([f"{int(r * 10):04d}p{int(abs(d) * 10):03d}" for r, d in zip(ra, dec)]),
        "objid": np.arange(m, dtype=np.int32), "ra": ra, "dec": dec, "type": types,
        "nobs_g": rng.integers(1, 8, m).astype(np.int16), "nobs_r": rng.integers(1, 8, m).astype(np.int16),
        "nobs_z": rng.choice([2, 3, 4, 5, 7, 9, 12, 15], m).astype(np.int16),
        "maskbits": np.where(rng.uniform(size=m) < 0.1, 2, 0).astype(np.int32),
        "shape_r": rng.lognormal(0.0, 0.6, m).astype(np.float32),
        "shape_e1": rng.normal(0, 0.25, m).astype(np.float32), "shape_e2": rng.normal(0, 0.25, m).astype(np.float32),
        "sersic": rng.uniform(0.5, 6, m).astype(np.float32), "ebv": rng.uniform(0.01, 0.1, m).astype(np.float32),
    }
    flux_r = rng.lognormal(1.0, 1.0, m)
    for b, colour in zip("grz", (0.6, 1.0, 1.5)):
        cols[f"flux_{b}"] = (flux_r * colour * rng.lognormal(0, 0.3, m)).astype(np.float32)
        cols[f"psfsize_{b}"] = rng.uniform(0.9, 1.8, m).astype(np.float32)
        cols[f"psfdepth_{b}"] = rng.uniform(200, 2000, m).astype(np.float32)  # nmgy^-2
    return pa.table(cols)
