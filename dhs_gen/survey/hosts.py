"""The real DR10 LRG sample: the parent host sample for injections and the mock's real galaxies."""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

from dhs_gen.data_files import data_path
from dhs_gen.survey.bricks import cell_index
from dhs_gen.survey.photoz import photo_z_from_fluxes

LRG_FILE = ("dr10_stats", "dr10_lrg_sample_catalog.csv.gz")


@lru_cache(maxsize=1)
def _lrg_frame() -> pd.DataFrame:
    frame = pd.read_csv(data_path(*LRG_FILE))
    frame.columns = [c.lower() for c in frame.columns]
    frame["type"] = frame["type"].astype(str).str.strip()
    frame = frame.drop_duplicates(["ra", "dec"]).reset_index(drop=True)
    frame.insert(0, "lrg_index", np.arange(len(frame), dtype=np.int64))
    frame["z_phot"], frame["z_phot_err"] = photo_z_from_fluxes(*(frame[f"flux_{b}"] for b in ("g", "r", "z", "w1")))
    return frame


def load_lrg_sample() -> pd.DataFrame:
    """Real DR10 LRGs (packaged copy): lower-case columns ``lrg_index, ra, dec`` [deg],
    ``brickname``, ``flux_g/r/z/w1`` [nanomaggies], ``type`` (Tractor), ``g_mag``... [AB mag],
    colours, the earlier pipeline's selection flags, and ``z_phot``, ``z_phot_err`` (photometric
    redshift and its 1-sigma error from g, r, z, W1, :mod:`dhs_gen.survey.photoz`). A fresh copy
    each call."""
    return _lrg_frame().copy()


@lru_cache(maxsize=1)
def _lrg_cells() -> tuple[np.ndarray, np.ndarray]:
    frame = _lrg_frame()
    iy, ix = cell_index(frame["ra"].to_numpy(), frame["dec"].to_numpy())
    keys = iy * (1 << 32) + ix
    order = np.argsort(keys, kind="stable")
    return keys[order], order


def lrgs_in_cells(iy, ix) -> np.ndarray:
    """Row indices of real LRGs lying in any of the given cells (sorted)."""
    keys, order = _lrg_cells()
    want = np.unique(np.asarray(iy, dtype=np.int64) * (1 << 32) + np.asarray(ix, dtype=np.int64))
    lo = np.searchsorted(keys, want, side="left")
    hi = np.searchsorted(keys, want, side="right")
    if not np.any(hi > lo):
        return np.zeros(0, dtype=np.int64)
    return np.sort(np.concatenate([order[a:b] for a, b in zip(lo, hi) if b > a]))

