"""Tractor / sweep rows -> the derived columns every catalogue stage shares.

Input: Tractor column names (any case): brickname, objid, ra, dec, type, flux_g/r/z [nmgy],
nobs_g/r/z, shape_r [arcsec], shape_e1/e2, sersic, maskbits, ebv, psfsize_g/r/z [arcsec FWHM],
psfdepth_g/r/z as an INVERSE VARIANCE [nmgy^-2] (sweeps), or already psfdepth_<b>_mag5 [AB mag].
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dhs_gen.units import nmgy_to_mag, psfdepth_ivar_to_mag5

REQUIRED = ("brickname", "objid", "ra", "dec", "type")
NOBS_Z_EDGES = ((1, 2, "1-2"), (3, 5, "3-5"), (6, 10, "6-10"), (11, None, "11+"))


def normalize_tractor(table: pa.Table) -> pa.Table:
    """Lower-case column names, decode/strip ``type`` and ``brickname``; check the required columns."""
    table = table.rename_columns([c.lower() for c in table.column_names])
    missing = [c for c in REQUIRED if c not in table.column_names]
    if missing:
        raise ValueError(f"Tractor table lacks required columns {missing}")
    for name in ("type", "brickname"):
        column = table.column(name)
        if pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type):
            column = column.cast(pa.string())
        table = table.set_column(table.column_names.index(name), name, pc.utf8_trim_whitespace(column))
    return table


def num(table, name: str, dtype=np.float64, fill=np.nan) -> np.ndarray:
    """A column as numpy (nulls -> ``fill``); a missing column is all ``fill``."""
    if name not in table.column_names:
        return np.full(table.num_rows, fill, dtype=dtype)
    column = table.column(name)
    if column.null_count:
        column = pc.fill_null(column, fill)
    return np.asarray(column.to_numpy(zero_copy_only=False), dtype=dtype)


def strings(table, name: str) -> np.ndarray:
    """A string column as an object array (nulls -> '')."""
    if name not in table.column_names:
        return np.full(table.num_rows, "", dtype=object)
    return np.asarray(pc.fill_null(table.column(name).cast(pa.string()), "").to_numpy(zero_copy_only=False),
                      dtype=object)


def galaxy_ids(brickname: np.ndarray, objid: np.ndarray) -> np.ndarray:
    """``{brickname}_{objid}`` for each row."""
    return np.char.add(np.char.add(np.asarray(brickname, dtype=str), "_"),
                       np.asarray(objid, dtype=np.int64).astype(str)).astype(object)


def nobs_z_bin(nobs_z) -> np.ndarray:
    """nobs_z -> '0' | '1-2' | '3-5' | '6-10' | '11+'."""
    nobs_z = np.asarray(nobs_z, dtype=np.int64)
    out = np.full(nobs_z.shape, "0", dtype=object)
    for lo, hi, label in NOBS_Z_EDGES:
        out[(nobs_z >= lo) & (nobs_z <= (hi if hi is not None else np.iinfo(np.int64).max))] = label
    return out


def type_bin(types) -> np.ndarray:
    """Tractor type -> SER | DEV | REX | OTHER."""
    types = np.asarray(types, dtype=object)
    return np.where(np.isin(types, ["SER", "DEV", "REX"]), types, "OTHER").astype(object)


def conditions(table: pa.Table) -> dict:
    """psfsize_<b> [arcsec], psfdepth_<b>_mag5 [AB mag] and ebv [mag] as float32 arrays.

    ``psfdepth_<b>`` in the input is an inverse variance [nmgy^-2] (converted); an input that
    already has ``psfdepth_<b>_mag5`` is taken as is.
    """
    out = {}
    for b in "grz":
        out[f"psfsize_{b}"] = num(table, f"psfsize_{b}").astype(np.float32)
        if f"psfdepth_{b}_mag5" in table.column_names:
            out[f"psfdepth_{b}_mag5"] = num(table, f"psfdepth_{b}_mag5").astype(np.float32)
        else:
            out[f"psfdepth_{b}_mag5"] = psfdepth_ivar_to_mag5(num(table, f"psfdepth_{b}")).astype(np.float32)
    out["ebv"] = num(table, "ebv").astype(np.float32)
    return out


def photometry(table: pa.Table) -> dict:
    """flux_<b> [nmgy], mag_<b> [AB mag, NaN for flux <= 0], g_minus_r, r_minus_z [mag] (float32)."""
    out = {}
    for b in "grz":
        flux = num(table, f"flux_{b}")
        out[f"flux_{b}"] = flux.astype(np.float32)
        out[f"mag_{b}"] = nmgy_to_mag(flux).astype(np.float32)
    out["g_minus_r"] = (out["mag_g"] - out["mag_r"]).astype(np.float32)
    out["r_minus_z"] = (out["mag_r"] - out["mag_z"]).astype(np.float32)
    return out


def read_tractor_fits(uri: str) -> pa.Table:
    """A Tractor/sweep FITS catalogue (one-dimensional columns) as a normalised Arrow table."""
    import io

    from astropy.table import Table

    from dhs_gen.storage import read_bytes

    table = Table.read(io.BytesIO(read_bytes(uri)), format="fits")
    names = [n for n in table.colnames if len(table[n].shape) <= 1]
    arrays = []
    for name in names:
        data = np.asarray(table[name])
        if data.dtype.kind in "SU":
            arrays.append(pa.array(np.char.strip(data.astype(str)).astype(object), pa.string()))
        else:
            arrays.append(pa.array(data.astype(data.dtype.newbyteorder("="))))
    return normalize_tractor(pa.Table.from_arrays(arrays, names=names))


def read_tractor_spark(spark, uri: str):
    """Spark: a Tractor/sweep Parquet dataset with lower-case column names."""
    from dhs_gen.storage import to_file_uri

    df = spark.read.parquet(to_file_uri(uri))
    return df.toDF(*[c.lower() for c in df.columns])
