"""Observing conditions of the mock survey, per brick, from real DR10 tables.

Inside the 105 real DR10 bricks of ``dr10_bricks_psfsize_psfdepth_grz_*`` a position gets that
brick's psfsize (PSF FWHM, arcsec), psfdepth (5-sigma AB mag) and E(B-V). Elsewhere each brick
draws, deterministically from (seed, brick), one of the 2,689 real DR10-south regions (median r
seeing and depth, E(B-V)) and one real brick's g/z offsets relative to r (FWHM ratios, depth
differences), so the joint g/r/z distribution follows the real one.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

from dhs_gen import BANDS
from dhs_gen.data_files import data_path
from dhs_gen.survey.bricks import brick_of
from dhs_gen.survey.hashing import combine, normal, seed_key, unit

_BRICK_FILES = ("dr10_bricks_psfsize_psfdepth_grz_primary.csv.gz", "dr10_bricks_psfsize_psfdepth_grz_backup.csv.gz")
# Single-epoch 5-sigma depths [AB mag] used to turn a coadd depth into a number of exposures:
# m5(nobs) = m5_single + 1.25 log10(nobs) (DECam 90 s g/r, 90-ish s z, typical DR10 conditions).
SINGLE_EPOCH_MAG5 = {"g": 23.7, "r": 23.3, "z": 22.3}


@lru_cache(maxsize=1)
def real_bricks() -> pd.DataFrame:
    """The real DR10 bricks with conditions, indexed by the brick id of their centre."""
    frame = pd.concat([pd.read_csv(data_path("dr10_stats", f)) for f in _BRICK_FILES], ignore_index=True)
    frame = frame.drop_duplicates("brickname").reset_index(drop=True)
    ids, _, _ = brick_of(frame["ra"].to_numpy(), frame["dec"].to_numpy())
    return frame.assign(brick_id=ids).sort_values("brick_id").reset_index(drop=True)


@lru_cache(maxsize=1)
def real_regions() -> pd.DataFrame:
    """The real DR10-south regions with valid median r seeing/depth and E(B-V)."""
    frame = pd.read_csv(data_path("dr10_stats", "dr10_regions_summary_psf_depth_r.csv.gz"))
    cols = ["median_psf_r_arcsec", "median_psfdepth_r", "median_ebv"]
    frame = frame.dropna(subset=cols)
    # a few regions carry placeholder zeros (no coverage): not conditions to draw from
    good = frame["median_psfdepth_r"].between(22.0, 27.0) & frame["median_psf_r_arcsec"].between(0.5, 4.0)
    return frame[good].reset_index(drop=True)


@lru_cache(maxsize=1)
def _brick_arrays() -> dict:
    return {c: real_bricks()[c].to_numpy() for c in real_bricks().columns if c != "brickname"}


@lru_cache(maxsize=1)
def _region_arrays() -> dict:
    return {c: real_regions()[c].to_numpy(np.float64) for c in
            ("median_psf_r_arcsec", "median_psfdepth_r", "median_ebv")}


def conditions_at(ra, dec, seed=0) -> dict:
    """Per-position conditions (arrays): psfsize_<b> [arcsec FWHM], psfdepth_<b> [5-sigma AB mag],
    ebv [mag], nobs_<b>, brick_id, in_real_brick (bool). Constant within a brick."""
    ra = np.atleast_1d(np.asarray(ra, dtype=np.float64))
    dec = np.atleast_1d(np.asarray(dec, dtype=np.float64))
    ids, _, _ = brick_of(ra, dec)
    bricks = _brick_arrays()
    regions = _region_arrays()
    key = combine(seed_key(seed), ids.astype(np.uint64))

    # drawn conditions: a real region for r, a real brick's g/z offsets
    n_reg, n_brick = len(regions["median_ebv"]), len(bricks["brick_id"])
    reg = np.minimum((unit(key, 1) * n_reg).astype(np.int64), n_reg - 1)
    ref = np.minimum((unit(key, 2) * n_brick).astype(np.int64), n_brick - 1)
    psf_r = regions["median_psf_r_arcsec"][reg] * np.exp(0.03 * normal(key, 3))
    depth_r = regions["median_psfdepth_r"][reg] + 0.05 * normal(key, 4)
    out = {
        "psfsize_r": psf_r,
        "psfsize_g": psf_r * (bricks["psfsize_g"][ref] / bricks["psfsize_r"][ref]),
        "psfsize_z": psf_r * (bricks["psfsize_z"][ref] / bricks["psfsize_r"][ref]),
        "psfdepth_r": depth_r,
        "psfdepth_g": depth_r + (bricks["psfdepth_g"][ref] - bricks["psfdepth_r"][ref]),
        "psfdepth_z": depth_r + (bricks["psfdepth_z"][ref] - bricks["psfdepth_r"][ref]),
        "ebv": regions["median_ebv"][reg],
    }
    # real bricks override
    pos = np.minimum(np.searchsorted(bricks["brick_id"], ids), n_brick - 1)
    hit = bricks["brick_id"][pos] == ids
    for name in out:
        out[name] = np.where(hit, bricks[name][pos], out[name]).astype(np.float64)
    for i, b in enumerate(BANDS):
        extra = out[f"psfdepth_{b}"] - SINGLE_EPOCH_MAG5[b]
        nobs = np.round(10.0 ** (extra / 1.25) * np.exp(0.25 * normal(key, 10 + i)))
        out[f"nobs_{b}"] = np.clip(nobs, 1, 60).astype(np.int16)
    out["brick_id"] = ids
    out["in_real_brick"] = hit
    return out
