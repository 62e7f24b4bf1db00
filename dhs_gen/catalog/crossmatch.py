"""Positional crossmatch: astropy ``SkyCoord`` locally, a HEALPix-bucketed join in Spark.

The Spark join never forms a cross product: each row of the small side (lenses) is exploded to
the NESTED pixels its search disc touches (``healpy.query_disc(..., inclusive=True)``) and
equi-joined on the pixel of the large side; the exact great-circle separation then decides.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

ARCSEC_PER_DEG = 3600.0
DEFAULT_JOIN_NSIDE = 4096  # pixels ~52" across: a 5-11" disc touches at most a handful


def nearest_match(ra1, dec1, ra2, dec2, radius_arcsec: float) -> tuple[np.ndarray, np.ndarray]:
    """For each (ra1, dec1) the index into (ra2, dec2) of its nearest source within the radius.

    Returns (index int64, -1 where none; separation [arcsec] float64, NaN where none).
    """
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    n = len(ra1)
    index = np.full(n, -1, dtype=np.int64)
    sep = np.full(n, np.nan)
    if n == 0 or len(ra2) == 0:
        return index, sep
    c1 = SkyCoord(np.asarray(ra1, float) * u.deg, np.asarray(dec1, float) * u.deg)
    c2 = SkyCoord(np.asarray(ra2, float) * u.deg, np.asarray(dec2, float) * u.deg)
    idx, d2d, _ = c1.match_to_catalog_sky(c2)
    d = d2d.to_value(u.arcsec)
    ok = d <= radius_arcsec
    index[ok] = idx[ok]
    sep[ok] = d[ok]
    return index, sep


def within_radius(ra, dec, ref_ra, ref_dec, radius_arcsec: float) -> np.ndarray:
    """Boolean mask: rows of (ra, dec) with any reference position within the radius."""
    index, _ = nearest_match(ra, dec, ref_ra, ref_dec, radius_arcsec)
    return index >= 0


def angular_sep_arcsec(ra1, dec1, ra2, dec2) -> np.ndarray:
    """Great-circle separation [arcsec] (haversine, stable at small angles); inputs in degrees."""
    ra1, dec1, ra2, dec2 = (np.radians(np.asarray(x, dtype=np.float64)) for x in (ra1, dec1, ra2, dec2))
    h = np.sin((dec2 - dec1) / 2) ** 2 + np.cos(dec1) * np.cos(dec2) * np.sin((ra2 - ra1) / 2) ** 2
    return np.degrees(2 * np.arcsin(np.sqrt(np.clip(h, 0, 1)))) * ARCSEC_PER_DEG


def disc_pixels(ra, dec, radius_arcsec: float, nside: int = DEFAULT_JOIN_NSIDE) -> tuple[np.ndarray, np.ndarray]:
    """(row index, NESTED pixel) for every pixel each disc of ``radius_arcsec`` touches (inclusive)."""
    import healpy as hp

    vecs = hp.ang2vec(np.asarray(ra, float), np.asarray(dec, float), lonlat=True).reshape(-1, 3)
    radius = np.radians(radius_arcsec / ARCSEC_PER_DEG)
    rows, pixels = [], []
    for i, vec in enumerate(vecs):
        pix = hp.query_disc(nside, vec, radius, inclusive=True, nest=True)
        rows.append(np.full(len(pix), i, dtype=np.int64))
        pixels.append(pix.astype(np.int64))
    if not rows:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(rows), np.concatenate(pixels)


def explode_discs(frame: pd.DataFrame, radius_arcsec: float, nside: int = DEFAULT_JOIN_NSIDE,
                  ra: str = "ra", dec: str = "dec") -> pd.DataFrame:
    """``frame`` repeated once per pixel its disc touches, with a ``join_pixel`` column."""
    rows, pixels = disc_pixels(frame[ra].to_numpy(), frame[dec].to_numpy(), radius_arcsec, nside)
    out = frame.iloc[rows].reset_index(drop=True)
    out["join_pixel"] = pixels
    return out


def pixel_batch_fn(nside: int = DEFAULT_JOIN_NSIDE, ra: str = "ra", dec: str = "dec", out: str = "join_pixel"):
    """A batch function adding the NESTED pixel column ``out`` to an Arrow batch (for mapInArrow)."""
    from dhs_gen.catalog.splits import healpix_index

    def fn(batch: pa.RecordBatch) -> pa.RecordBatch:
        pix = healpix_index(batch.column(ra).to_numpy(zero_copy_only=False),
                            batch.column(dec).to_numpy(zero_copy_only=False), nside)
        return pa.RecordBatch.from_arrays([*batch.columns, pa.array(pix, pa.int64())],
                                          names=[*batch.schema.names, out])
    return fn


def with_join_pixel(df, nside: int = DEFAULT_JOIN_NSIDE, ra: str = "ra", dec: str = "dec"):
    """Spark: ``df`` plus its NESTED ``join_pixel`` column (vectorised healpy over Arrow batches)."""
    from pyspark.sql.pandas.types import to_arrow_schema

    from dhs_gen.spark import map_arrow_batches

    schema = to_arrow_schema(df.schema).append(pa.field("join_pixel", pa.int64()))
    return map_arrow_batches(df, pixel_batch_fn(nside, ra, dec), schema)


def sep_arcsec_col(ra1: str, dec1: str, ra2: str, dec2: str):
    """Spark column: haversine separation [arcsec] between two RA/Dec column pairs (degrees)."""
    from pyspark.sql import functions as F

    r1, d1, r2, d2 = (F.radians(F.col(c)) for c in (ra1, dec1, ra2, dec2))
    h = F.pow(F.sin((d2 - d1) / 2), 2) + F.cos(d1) * F.cos(d2) * F.pow(F.sin((r2 - r1) / 2), 2)
    return F.degrees(2 * F.asin(F.sqrt(F.least(F.greatest(h, F.lit(0.0)), F.lit(1.0))))) * F.lit(ARCSEC_PER_DEG)


def pairs_within_spark(spark, big, small: pd.DataFrame, radius_arcsec: float, small_id: str,
                       nside: int = DEFAULT_JOIN_NSIDE, prefix: str = "ref_"):
    """Spark: every (big row, small row) pair closer than ``radius_arcsec``, with ``sep_arcsec``.

    ``small`` (a pandas frame with ``ra``, ``dec`` and ``small_id``) is exploded to its disc
    pixels and broadcast; ``big`` keeps one pixel per row. Small-side columns get ``prefix``.
    """
    from pyspark.sql import functions as F

    exploded = explode_discs(small[[small_id, "ra", "dec"]], radius_arcsec, nside)
    exploded = exploded.rename(columns={c: prefix + c for c in (small_id, "ra", "dec")})
    schema = f"{prefix}{small_id} string, {prefix}ra double, {prefix}dec double, join_pixel long"
    exploded[prefix + small_id] = exploded[prefix + small_id].astype(str)
    right = spark.createDataFrame(exploded, schema=schema)
    left = with_join_pixel(big, nside)
    joined = left.join(F.broadcast(right), on="join_pixel", how="inner").drop("join_pixel")
    joined = joined.withColumn("sep_arcsec", sep_arcsec_col("ra", "dec", prefix + "ra", prefix + "dec"))
    return joined.filter(F.col("sep_arcsec") <= F.lit(float(radius_arcsec)))
