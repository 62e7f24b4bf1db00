"""Positives: lenscat lenses/candidates crossmatched to the nearest Tractor source, tiers A/B.

``confident`` -> tier A (weight ``tier_a_weight``), ``probable`` -> tier B (``tier_b_weight``,
0.3-0.6). Every selected lens gives one row; unmatched lenses keep ``status`` =
"no_tractor_match". The crossmatch is local (:func:`match_local`, astropy) or Spark
(:func:`match_spark`, HEALPix-bucketed join); both give a match table that
:func:`assemble_positives` turns into the ``positives`` dataset.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from dhs_gen.catalog.config import PositivesConfig, SplitConfig
from dhs_gen.catalog.crossmatch import nearest_match, pairs_within_spark
from dhs_gen.catalog.lenscat import load_lenscat, select_lenses
from dhs_gen.catalog.splits import healpix_index, split_from_pixel
from dhs_gen.catalog.tractor import conditions, galaxy_ids, nobs_z_bin, normalize_tractor, num, strings
from dhs_gen.schemas import conform

NO_MATCH = "no_tractor_match"
MATCH_COLUMNS = ["name", "galaxy_id", "match_ra", "match_dec", "match_sep_arcsec", "type", "nobs_z",
                 *[f"psfsize_{b}" for b in "grz"], *[f"psfdepth_{b}" for b in "grz"], "ebv"]


def selected_lenses(cfg: PositivesConfig) -> pd.DataFrame:
    """The lenscat rows the config selects (survey, lens types, gradings)."""
    lenses = select_lenses(load_lenscat(cfg.catalog), cfg.survey, cfg.lens_types, cfg.gradings)
    dup = lenses["name"].duplicated()
    if dup.any():
        raise ValueError(f"lenscat selection has duplicate names, e.g. {lenses['name'][dup].iloc[0]!r}")
    return lenses


def _tractor_frame(table: pa.Table) -> pd.DataFrame:
    """The Tractor columns a match carries, from a normalised Arrow table."""
    out = {"galaxy_id": galaxy_ids(strings(table, "brickname"), num(table, "objid", np.int64, 0)),
           "match_ra": num(table, "ra"), "match_dec": num(table, "dec"), "type": strings(table, "type"),
           "nobs_z": num(table, "nobs_z", np.int64, 0), "ebv": num(table, "ebv")}
    for b in "grz":
        out[f"psfsize_{b}"] = num(table, f"psfsize_{b}")
        depth = f"psfdepth_{b}_mag5" if f"psfdepth_{b}_mag5" in table.column_names else f"psfdepth_{b}"
        out[depth] = num(table, depth)
    return pd.DataFrame(out)


def match_local(lenses: pd.DataFrame, tractor: pa.Table, radius_arcsec: float) -> pd.DataFrame:
    """Nearest Tractor source within the radius of each lens (astropy); one row per matched lens."""
    tractor = normalize_tractor(tractor)
    index, sep = nearest_match(lenses["ra"], lenses["dec"], num(tractor, "ra"), num(tractor, "dec"), radius_arcsec)
    hit = index >= 0
    frame = _tractor_frame(tractor.take(pa.array(index[hit])))
    frame.insert(0, "name", lenses["name"].to_numpy()[hit])
    frame["match_sep_arcsec"] = sep[hit]
    return frame


def match_spark(spark, lenses: pd.DataFrame, tractor_df, radius_arcsec: float, nside: int) -> pd.DataFrame:
    """Spark twin of :func:`match_local`: HEALPix-bucketed join, nearest by (separation, galaxy_id)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    depth_cols = [c for b in "grz" for c in (f"psfdepth_{b}_mag5", f"psfdepth_{b}") if c in tractor_df.columns]
    keep = ["ra", "dec", "type", "nobs_z", "ebv", *[f"psfsize_{b}" for b in "grz"], *depth_cols]
    big = tractor_df.select(
        F.concat_ws("_", F.trim(F.col("brickname")), F.col("objid").cast("long").cast("string")).alias("galaxy_id"),
        *[F.col(c) for c in keep if c in tractor_df.columns])
    pairs = pairs_within_spark(spark, big, lenses, radius_arcsec, "name", nside)
    best = Window.partitionBy("ref_name").orderBy("sep_arcsec", "galaxy_id")
    nearest = (pairs.withColumn("_rank", F.row_number().over(best)).filter("_rank = 1")
               .withColumnRenamed("ref_name", "name").withColumnRenamed("sep_arcsec", "match_sep_arcsec")
               .withColumnRenamed("ra", "match_ra").withColumnRenamed("dec", "match_dec")
               .withColumn("type", F.trim(F.col("type")))
               .drop("_rank", "ref_ra", "ref_dec"))
    return nearest.toPandas()


def assemble_positives(lenses: pd.DataFrame, matches: pd.DataFrame, cfg: PositivesConfig, split: SplitConfig
                       ) -> pa.Table:
    """The ``positives`` dataset: one row per lens, tier/weight, match columns, split, status."""
    out = lenses[["name", "ra", "dec", "zlens", "lens_type", "grading"]].merge(matches, on="name", how="left")
    matched = out["galaxy_id"].notna().to_numpy()
    grading = out["grading"].to_numpy(dtype=object)
    out["tier"] = np.where(grading == "confident", "A", "B")
    out["sample_weight"] = np.where(grading == "confident", cfg.tier_a_weight, cfg.tier_b_weight)
    nobs_z = out["nobs_z"].fillna(0).to_numpy(np.int64)
    out["nobs_z_bin"] = np.where(matched, nobs_z_bin(nobs_z), None)
    cond = conditions(pa.Table.from_pandas(out, preserve_index=False))
    for name, values in cond.items():
        out[name] = values
    ra = np.where(matched, out["match_ra"].fillna(0), out["ra"])
    dec = np.where(matched, out["match_dec"].fillna(0), out["dec"])
    out["healpix_128"] = healpix_index(ra, dec, 128)
    s = split
    out["split"] = split_from_pixel(out["healpix_128"].to_numpy(), s.seed, s.fractions, s.scheme, s.names)
    out["status"] = np.where(matched, "ok", NO_MATCH)
    out["type"] = out["type"].where(matched, None)
    return conform(pa.Table.from_pandas(out, preserve_index=False), "positives")


def build_positives_local(tractor: pa.Table, cfg: PositivesConfig, split: SplitConfig,
                          lenses: pd.DataFrame | None = None) -> pa.Table:
    """Positives from a Tractor table in memory (lenscat selection unless ``lenses`` is given)."""
    lenses = selected_lenses(cfg) if lenses is None else lenses
    return assemble_positives(lenses, match_local(lenses, tractor, cfg.match_radius_arcsec), cfg, split)
