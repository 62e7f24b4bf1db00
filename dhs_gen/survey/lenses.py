"""Known strong lenses in the mock sky: a lens galaxy plus a lensed source at every lens-table position.

The lens table is lenscat (the packaged copy, galaxy- and group-scale rows; cluster lenses are
left out: one SIE is not a cluster) or any CSV/Parquet table with ``ra``, ``dec`` [deg] and
optional ``name``, ``grading`` (confident | probable), ``theta_e`` [arcsec].

Each system is a pure function of (seed, lens position) through :mod:`dhs_gen.survey.hashing`:

* lens galaxy (population "lens"): g/r/z/W1 fluxes [nmgy] copied from a real DR10 LRG of type
  DEV/SER with 18.25 < r < 22.5 (the real LRG sample's distribution), Tractor type DEV or SER,
  half-light radius 1.1" x exp(0.35 N) in [0.5, 4]", DEV-like axis ratios; its photo-z ``z_phot``
  is the injection hosts' estimator (:mod:`dhs_gen.survey.photoz`) on those g, r, z, W1 fluxes. Where a real DR10 LRG
  of the mock already sits within 1" of the lens, that LRG is the deflector and no galaxy is added;
* mass: SIE aligned with the light (|e| capped at 0.4) plus external shear N(0, 0.05) per
  component (|gamma| <= 0.15); Einstein radius theta_E log-normal, median 1.5" (confident) or
  1.2" (probable / ungraded), sigma_ln 0.3, clipped to [0.6, 3.5]" (or the table's ``theta_e``);
* source: the project's ``sersic`` generator (:mod:`dhs_gen.sources`) with unlensed
  r ~ U(22.5, 25) AB: the visible tail of the injection prior U(23, 26), since these lenses were
  found by eye/CNN in DR10 imaging (arcs at or below the per-pixel sky noise, as real arcs).

Arcs are rendered unconvolved with :func:`dhs_gen.lensing.render.lensed_sersic_unit_images`
(supersampling 4) and convolved, with the rest of the scene, by the brick's PSF.
"""
from __future__ import annotations

from functools import lru_cache
from typing import List

import numpy as np
import pandas as pd

from dhs_gen import PIXEL_SCALE_ARCSEC
from dhs_gen.survey.bricks import cell_index
from dhs_gen.survey.hashing import combine, normal, position_key, seed_key, unit
from dhs_gen.survey.hosts import _lrg_frame
from dhs_gen.survey.sky import DEV, LRG_OBJID_OFFSET, POP_LENS, SER, _ellipticity, _empty

LENSCAT = "lenscat"
LENS_OBJID_OFFSET = LRG_OBJID_OFFSET + (1 << 22)  # above every LRG/satellite objid; fits int32
THETA_E_MEDIAN = {"confident": 1.5, "probable": 1.2}  # arcsec
THETA_E_SIGMA_LN = 0.3
THETA_E_RANGE = (0.6, 3.5)  # arcsec
SOURCE_MAG_R = (22.5, 25.0)  # AB, unlensed
SHEAR_SIGMA = 0.05
LRG_DEFLECTOR_RADIUS_ARCSEC = 1.0
ARC_SUPERSAMPLING = 4
_LENS_STREAM = np.uint64(0x4C454E53)  # "LENS"


def _key(ra, dec, seed) -> np.ndarray:
    return combine(combine(seed_key(seed), _LENS_STREAM), position_key(ra, dec))


@lru_cache(maxsize=4)
def load_lens_table(source: str = LENSCAT) -> pd.DataFrame:
    """The lens table (cached; do not modify): ``ra``, ``dec`` [deg], ``name``, ``grading``,
    ``theta_e`` [arcsec, NaN = drawn], ``has_lrg`` (a real DR10 LRG within 1" is the deflector),
    ``survey`` (lenscat survey tags), sorted as read; ``lens_index`` = row number."""
    from dhs_gen.catalog.crossmatch import nearest_match

    if source == LENSCAT:
        from dhs_gen.catalog.lenscat import load_lenscat

        frame = load_lenscat()
        frame = frame[frame["lens_type"].isin(["galaxy", "group"])]
    else:
        from dhs_gen.storage import read_bytes, read_parquet

        if source.endswith(".parquet"):
            frame = read_parquet(source).to_pandas()
        else:
            import io

            raw = read_bytes(source)
            frame = pd.read_csv(io.BytesIO(raw), compression="gzip" if raw[:2] == b"\x1f\x8b" else None)
        frame.columns = [c.lower() for c in frame.columns]
        missing = {"ra", "dec"} - set(frame.columns)
        if missing:
            raise ValueError(f"lens table {source}: missing columns {sorted(missing)}")
    frame = frame.reset_index(drop=True)
    ra, dec = frame["ra"].to_numpy(np.float64), frame["dec"].to_numpy(np.float64)
    if not (np.all(np.isfinite(ra)) and np.all(np.isfinite(dec)) and np.all(np.abs(dec) <= 90)):
        raise ValueError(f"lens table {source}: invalid ra/dec values")
    out = pd.DataFrame({"lens_index": np.arange(len(frame), dtype=np.int64), "ra": ra % 360.0, "dec": dec})
    out["name"] = frame["name"].astype(str) if "name" in frame else [f"lens_{i}" for i in range(len(frame))]
    out["grading"] = (frame["grading"].astype(str).str.strip().str.lower() if "grading" in frame
                      else "probable")
    out["theta_e"] = frame["theta_e"].astype(np.float64) if "theta_e" in frame else np.nan
    out["survey"] = frame["survey"].astype(str) if "survey" in frame else ""
    lrg = _lrg_frame()
    idx, _ = nearest_match(ra, dec, lrg["ra"].to_numpy(), lrg["dec"].to_numpy(), LRG_DEFLECTOR_RADIUS_ARCSEC)
    out["has_lrg"] = idx >= 0
    return out


@lru_cache(maxsize=4)
def _lens_cells(source: str) -> tuple:
    table = load_lens_table(source)
    iy, ix = cell_index(table["ra"].to_numpy(), table["dec"].to_numpy())
    keys = iy * (1 << 32) + ix
    order = np.argsort(keys, kind="stable")
    return keys[order], order


def lenses_in_cells(iy, ix, source: str = LENSCAT) -> np.ndarray:
    """Row indices of the lens table lying in any of the given cells (sorted)."""
    keys, order = _lens_cells(source)
    want = np.unique(np.asarray(iy, dtype=np.int64) * (1 << 32) + np.asarray(ix, dtype=np.int64))
    lo, hi = np.searchsorted(keys, want, side="left"), np.searchsorted(keys, want, side="right")
    hits = [order[a:b] for a, b in zip(lo, hi) if b > a]
    return np.sort(np.concatenate(hits)) if hits else np.zeros(0, dtype=np.int64)


@lru_cache(maxsize=1)
def _lens_templates() -> np.ndarray:
    """Rows of the real LRG sample the lens galaxies copy: DEV/SER, 18.25 < r < 22.5."""
    frame = _lrg_frame()
    ok = frame["type"].isin(["DEV", "SER"]) & (frame["flux_r"] > 1.0) & (frame["flux_r"] < 50.0)
    ok &= (frame["flux_g"] > 0) & (frame["flux_z"] > 0) & (frame["flux_w1"] > 0)
    return np.flatnonzero(ok.to_numpy())


def lens_systems(index, seed=0, source: str = LENSCAT) -> dict:
    """Lens galaxy columns (as :mod:`dhs_gen.survey.sky` objects, population "lens") and the
    lens model of lens-table rows ``index``: ``theta_E`` [arcsec], ``mass_e1``, ``mass_e2``
    (lenstronomy convention, x = pixel column), ``gamma1``, ``gamma2``, ``has_lrg``, ``name``."""
    table = load_lens_table(source)
    index = np.asarray(index, dtype=np.int64)
    ra, dec = table["ra"].to_numpy()[index], table["dec"].to_numpy()[index]
    key = _key(ra, dec, seed)
    frame = _lrg_frame()
    templates = _lens_templates()
    pick = templates[np.minimum((unit(key, 1) * len(templates)).astype(np.int64), len(templates) - 1)]
    types = np.where(frame["type"].to_numpy()[pick] == "SER", SER, DEV).astype(np.int8)
    shape_r = np.clip(1.1 * np.exp(0.35 * normal(key, 2)), 0.5, 4.0)
    e1, e2 = _ellipticity(key, types, 3)
    sersic = np.where(types == SER, 2.5 + 3.5 * unit(key, 8), 4.0)
    zp = frame["z_phot"].to_numpy()[pick]  # the host estimator on the fluxes the lens copies
    grading = table["grading"].to_numpy()[index]
    median = np.where(grading == "confident", THETA_E_MEDIAN["confident"], THETA_E_MEDIAN["probable"])
    theta_e = np.clip(median * np.exp(THETA_E_SIGMA_LN * normal(key, 10)), *THETA_E_RANGE)
    given = table["theta_e"].to_numpy()[index]
    theta_e = np.where(np.isfinite(given) & (given > 0), given, theta_e)
    # Tractor (e1, e2) is east of north; in pixel x (column, west) / y (row, north) coordinates the
    # position angle is phi = theta + pi/2, so lenstronomy's (e1, e2) = -(Tractor e1, e2).
    e_light = np.hypot(e1, e2)
    scale = np.where(e_light > 0.4, 0.4 / np.maximum(e_light, 1e-12), 1.0)
    g1 = np.clip(SHEAR_SIGMA * normal(key, 11), -0.15, 0.15)
    g2 = np.clip(SHEAR_SIGMA * normal(key, 12), -0.15, 0.15)
    flux = {f"flux_{b}": frame[f"flux_{b}"].to_numpy(np.float64)[pick] for b in ("g", "r", "z", "w1")}
    return {"ra": ra, "dec": dec, "objid": LENS_OBJID_OFFSET + index, "population": np.full(len(index), POP_LENS, np.int8),
            "type": types, **flux, "shape_r": shape_r, "shape_e1": e1, "shape_e2": e2, "sersic": sersic,
            "z_phot": zp, "maskbits": np.zeros(len(index), np.int32),
            "theta_E": theta_e, "mass_e1": -e1 * scale, "mass_e2": -e2 * scale, "gamma1": g1, "gamma2": g2,
            "has_lrg": table["has_lrg"].to_numpy()[index], "name": table["name"].to_numpy()[index],
            "lens_index": index, "key": key}


def lens_galaxies(index, seed=0, source: str = LENSCAT, include_lrgs: bool = True) -> dict:
    """Sky-object columns of the lens galaxies of lens-table rows ``index`` (none where a real
    LRG of the mock is the deflector)."""
    if not len(np.atleast_1d(index)):
        return _empty()
    sys_ = lens_systems(index, seed, source)
    keep = ~sys_["has_lrg"] if include_lrgs else np.ones(len(sys_["ra"]), bool)
    return {k: sys_[k][keep] for k in _empty()}


def arc_stamps(systems: dict, x, y, seed=0, source_name: str = "sersic") -> List[tuple]:
    """Unconvolved unit-flux arc images of lens ``systems`` centred at pixel positions (x, y):
    a list of (row, col, image (S, S) float32 [nmgy/px per nmgy of unlensed source flux],
    fluxes (3,) [nmgy, unlensed g, r, z], params dict) with (row, col) the stamp-centre pixel."""
    from dhs_gen.lensing.params import validate_lens, validate_sersic
    from dhs_gen.lensing.render import lensed_sersic_unit_images
    from dhs_gen.sources import get_source

    n = len(systems["ra"])
    if n == 0:
        return []
    gen = get_source(source_name, mag_r=SOURCE_MAG_R)
    u = np.stack([unit(systems["key"], 200 + j) for j in range(gen.n_uniforms)], axis=1)
    src = gen.from_uniforms(u, theta_E=systems["theta_E"])
    out = []
    for i in range(n):
        col, row = int(np.round(x[i])), int(np.round(y[i]))
        cx, cy = (x[i] - col) * PIXEL_SCALE_ARCSEC, (y[i] - row) * PIXEL_SCALE_ARCSEC
        half = int(np.ceil((2.0 * systems["theta_E"][i] + 3.0) / PIXEL_SCALE_ARCSEC))
        lens = validate_lens({"theta_E": systems["theta_E"][i:i + 1], "e1": systems["mass_e1"][i:i + 1],
                              "e2": systems["mass_e2"][i:i + 1], "center_x": [cx], "center_y": [cy],
                              "gamma1": systems["gamma1"][i:i + 1], "gamma2": systems["gamma2"][i:i + 1]})
        s = validate_sersic({"R_sersic": src["R_sersic"][i:i + 1], "n_sersic": src["n_sersic"][i:i + 1],
                             "e1": src["e1"][i:i + 1], "e2": src["e2"][i:i + 1],
                             "center_x": src["center_x"][i:i + 1] + cx, "center_y": src["center_y"][i:i + 1] + cy},
                            fluxes=False)
        image = lensed_sersic_unit_images(lens, s, 2 * half + 1, PIXEL_SCALE_ARCSEC, ARC_SUPERSAMPLING)[0]
        fluxes = np.array([src["flux_g"][i], src["flux_r"][i], src["flux_z"][i]], dtype=np.float64)
        params = {"name": str(systems["name"][i]), "theta_E": float(systems["theta_E"][i]),
                  "source_mag_r": float(src["mag_r"][i]), "source_flux": [float(f) for f in fluxes]}
        out.append((row, col, image, fluxes, params))
    return out


def patch_lenses(n: int, source: str = LENSCAT, seed=0, survey: str | None = "DESI") -> np.ndarray:
    """Lens-table rows for the catalogue's lens patches: up to ceil(n/2) confident lenses, the
    rest probable, each in a fixed hash order of (seed, position); restricted to lenscat rows
    tagged ``survey`` when the table has survey tags."""
    table = load_lens_table(source)
    mask = np.ones(len(table), bool)
    if survey and table["survey"].str.len().gt(0).any():
        mask &= table["survey"].str.split(",").map(lambda tags: survey in tags).to_numpy(dtype=bool)
    rows = np.flatnonzero(mask)
    order = np.argsort(_key(table["ra"].to_numpy()[rows], table["dec"].to_numpy()[rows], seed), kind="stable")
    rows = rows[order]
    conf = rows[table["grading"].to_numpy()[rows] == "confident"]
    rest = rows[table["grading"].to_numpy()[rows] != "confident"]
    n_conf = min(len(conf), (n + 1) // 2)
    return np.concatenate([conf[:n_conf], rest[:n - n_conf]])

