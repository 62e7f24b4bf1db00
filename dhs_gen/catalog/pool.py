"""The negative pool: cuts, N1/N2 confuser categories, strata columns, HEALPix split.

:func:`pool_batch` maps one Tractor Arrow batch to the ``negatives_pool`` columns plus
``pool_status`` ("ok" or the first failed cut); every input row gives one output row. The
11" exclusion around known lenses is a separate join (:func:`exclude_near_lenses` locally,
``jobs/negative_pool.py`` in Spark) that turns ``ok`` into ``near_known_lens``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from dhs_gen.catalog.config import CONFUSER_CATEGORIES, ConfuserThresholds, PoolConfig, PoolCuts, SplitConfig
from dhs_gen.catalog.crossmatch import within_radius
from dhs_gen.catalog.splits import healpix_index, split_from_pixel
from dhs_gen.catalog.tractor import (
    conditions,
    galaxy_ids,
    nobs_z_bin,
    normalize_tractor,
    num,
    photometry,
    strings,
    type_bin,
)
from dhs_gen.schemas import get_dataset

NEAR_LENS = "near_known_lens"
POOL_STATUS_FIELD = pa.field("pool_status", pa.string(), nullable=False)


def pool_output_schema() -> pa.Schema:
    """The negatives_pool schema plus ``pool_status``."""
    return get_dataset("negatives_pool").schema.append(POOL_STATUS_FIELD)


def cut_status(cols: dict, cuts: PoolCuts) -> np.ndarray:
    """'ok' or the first failed cut per row: bad_position, dec_range, maskbits, nobs, type, mag_z."""
    n = len(cols["ra"])
    status = np.full(n, "ok", dtype=object)

    def reject(mask, reason):
        status[(status == "ok") & mask] = reason

    reject(~np.isfinite(cols["ra"]) | ~np.isfinite(cols["dec"]) | (np.abs(cols["dec"]) > 90), "bad_position")
    dec = np.nan_to_num(cols["dec"], nan=0.0)
    if cuts.dec_min_deg is not None:
        reject(dec <= cuts.dec_min_deg, "dec_range")
    if cuts.dec_max_deg is not None:
        reject(dec >= cuts.dec_max_deg, "dec_range")
    maskbits = cols["maskbits"]
    if cuts.maskbits_reject_bits is None:
        reject(maskbits != 0, "maskbits")
    else:
        reject((maskbits & int(sum(1 << b for b in cuts.maskbits_reject_bits))) != 0, "maskbits")
    reject((cols["nobs_g"] < cuts.nobs_g_min) | (cols["nobs_r"] < cuts.nobs_r_min)
           | (cols["nobs_z"] < cuts.nobs_z_min), "nobs")
    reject(~np.isin(cols["type"], cuts.types), "type")
    if cuts.mag_z_max is not None:
        reject(~(cols["mag_z"] < cuts.mag_z_max), "mag_z")
    return status


def confuser_category(cols: dict, th: ConfuserThresholds) -> np.ndarray:
    """N2 category per row (first match wins), None for N1.

    Ellipticity |e| = hypot(shape_e1, shape_e2) is computed from the Tractor components; the
    shape_r fallback applies only where |e| is not finite.
    """
    types, flux_r, sersic, shape_r = cols["type"], cols["flux_r"], cols["sersic"], cols["shape_r"]
    e = np.hypot(cols["shape_e1"], cols["shape_e2"])
    with np.errstate(invalid="ignore"):
        ring = ((types == "DEV") & (flux_r >= th.ring_flux_r_min)) | (
            (types == "SER") & (flux_r >= th.ring_flux_r_min) & (sersic >= th.ring_sersic_min))
        edge = np.where(np.isfinite(e), (e >= th.edge_on_e_min) & (shape_r >= th.edge_on_shape_r_min),
                        shape_r >= th.edge_on_shape_r_fallback)
        blue = (cols["g_minus_r"] <= th.blue_g_minus_r_max) & (cols["mag_r"] <= th.blue_mag_r_max)
        large = (shape_r >= th.large_shape_r_min) & (flux_r >= th.large_flux_r_min)
    out = np.full(len(types), None, dtype=object)
    for name, mask in reversed(list(zip(CONFUSER_CATEGORIES, (ring, edge, blue, large)))):
        out[mask] = name
    return out


def pool_columns(table: pa.Table, cfg: PoolConfig, split: SplitConfig) -> dict:
    """All negatives_pool columns (numpy arrays) and ``pool_status`` for a Tractor table."""
    table = normalize_tractor(table)
    cols = {
        "brickname": strings(table, "brickname"),
        "objid": num(table, "objid", np.int64, 0),
        "ra": num(table, "ra"), "dec": num(table, "dec"),
        "type": strings(table, "type"),
        **{f"nobs_{b}": num(table, f"nobs_{b}", np.int32, 0) for b in "grz"},
        "maskbits": num(table, "maskbits", np.int32, 0),
        **photometry(table),
        **{c: num(table, c).astype(np.float32) for c in ("shape_r", "shape_e1", "shape_e2", "sersic")},
        **conditions(table),
    }
    cols["galaxy_id"] = galaxy_ids(cols["brickname"], cols["objid"])
    cols["type_bin"] = type_bin(cols["type"])
    cols["nobs_z_bin"] = nobs_z_bin(cols["nobs_z"])
    status = cut_status(cols, cfg.effective_cuts())
    finite = status != "bad_position"
    ra, dec = np.where(finite, cols["ra"], 0.0), np.where(finite, cols["dec"], 0.0)
    cols["healpix_64"] = healpix_index(ra, dec, 64)
    cols["healpix_128"] = healpix_index(ra, dec, 128)
    s = split
    cols["split"] = split_from_pixel(cols["healpix_128"], s.seed, s.fractions, s.scheme, s.names)
    cols["confuser_category"] = confuser_category(cols, cfg.confusers)
    cols["pool"] = np.where(pd.isna(cols["confuser_category"]), "N1", "N2").astype(object)
    cols["pool_status"] = status
    return cols


def pool_batch(batch, cfg: PoolConfig, split: SplitConfig) -> pa.RecordBatch:
    """One Tractor Arrow batch -> negatives_pool columns + ``pool_status`` (one row per input row)."""
    table = pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch
    cols = pool_columns(table, cfg, split)
    schema = pool_output_schema()
    arrays = [pa.array(cols[f.name], type=f.type, from_pandas=True) for f in schema]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def exclude_near_lenses(pool: pa.Table, lenses: pd.DataFrame, radius_arcsec: float) -> pa.Table:
    """Set ``pool_status`` to 'near_known_lens' for ok rows within the radius of any lens (SkyCoord)."""
    status = np.asarray(pool.column("pool_status").to_pylist(), dtype=object)
    ok = status == "ok"
    if ok.any() and len(lenses):
        near = within_radius(pool.column("ra").to_numpy()[ok], pool.column("dec").to_numpy()[ok],
                             lenses["ra"].to_numpy(), lenses["dec"].to_numpy(), radius_arcsec)
        idx = np.flatnonzero(ok)[near]
        status[idx] = NEAR_LENS
    return pool.set_column(pool.schema.get_field_index("pool_status"), POOL_STATUS_FIELD, pa.array(status, pa.string()))


def build_pool(tractor: pa.Table, lenses: pd.DataFrame, cfg: PoolConfig, split: SplitConfig
               ) -> tuple[pa.Table, dict]:
    """Local pool: cuts + exclusion; returns (ok rows in the negatives_pool schema, counts by status)."""
    full = pa.Table.from_batches([pool_batch(tractor, cfg, split)])
    full = exclude_near_lenses(full, lenses, cfg.effective_cuts().exclusion_radius_arcsec)
    counts = pd.Series(full.column("pool_status").to_pylist()).value_counts().to_dict()
    ok = full.filter(pc.equal(full.column("pool_status"), "ok")).drop(["pool_status"])
    return ok, {k: int(v) for k, v in counts.items()}
