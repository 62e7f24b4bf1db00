"""The training manifest: positives and sampled negatives as one table the trainer reads.

Columns (``training_manifest`` schema): galaxy_id, stamp_ref, label, sample_weight, split, tier
(A/B/N1/N2), type, nobs_z_bin, healpix_128, confuser_category, psfsize_r [arcsec],
psfdepth_r_mag5 [AB mag]. Splits are recomputed from healpix_128 with one split config for
both classes, so a pixel never straddles splits. Negatives that are also positives are dropped.
With a cutout index, only rows whose cutout is ``cutout_ok`` enter, and ``stamp_ref`` is
``{cutouts}#galaxy_id={id}``; without one, ``stamp_ref`` comes from a template.
"""
from __future__ import annotations

from dhs_gen.catalog.config import ManifestConfig, SplitConfig

MANIFEST_COLUMNS = ["galaxy_id", "stamp_ref", "label", "sample_weight", "split", "tier", "type", "nobs_z_bin",
                    "healpix_128", "confuser_category", "psfsize_r", "psfdepth_r_mag5"]


def _stamp_ref(cfg: ManifestConfig, cutouts_uri: str | None):
    from pyspark.sql import functions as F

    if cutouts_uri:
        return F.concat(F.lit(f"{cutouts_uri}#galaxy_id="), F.col("galaxy_id"))
    if "{galaxy_id}" not in cfg.stamp_ref_template:
        raise ValueError("manifest.stamp_ref_template must contain '{galaxy_id}'")
    head, tail = cfg.stamp_ref_template.split("{galaxy_id}", 1)
    return F.concat(F.lit(head), F.col("galaxy_id"), F.lit(tail))


def build_manifest_spark(positives, negatives, cfg: ManifestConfig, split: SplitConfig, cutouts=None, cutouts_uri: str | None = None
                         ) -> tuple:
    """Spark: (manifest DataFrame in MANIFEST_COLUMNS order, counts of rows left out by reason).

    positives: the positives dataset (only status 'ok' rows enter); negatives: sampled_negatives;
    cutouts: optional cutout index (galaxy_id, cutout_ok).
    """
    from pyspark.sql import functions as F

    from dhs_gen.catalog.splits import split_col

    dropped = {"positives_unmatched": positives.filter(F.col("status") != "ok").count()}
    pos = positives.filter(F.col("status") == "ok").select(
        "galaxy_id", F.lit(1).cast("tinyint").alias("label"), F.col("sample_weight").cast("float"), "tier", "type",
        "nobs_z_bin", "healpix_128", F.lit(None).cast("string").alias("confuser_category"),
        F.col("psfsize_r").cast("float"), F.col("psfdepth_r_mag5").cast("float"))
    weight = F.lit(None).cast("float")
    for tier, w in cfg.negative_weights.items():
        weight = F.when(F.col("pool") == tier, F.lit(float(w)).cast("float")).otherwise(weight)
    neg = negatives.select(
        "galaxy_id", F.lit(0).cast("tinyint").alias("label"), weight.alias("sample_weight"),
        F.col("pool").alias("tier"), "type", "nobs_z_bin", "healpix_128", "confuser_category",
        F.col("psfsize_r").cast("float"), F.col("psfdepth_r_mag5").cast("float"))
    unknown = neg.filter(F.col("sample_weight").isNull()).select("tier").distinct().collect()
    if unknown:
        raise ValueError(f"no weight configured for negative tiers {[r[0] for r in unknown]}")
    before = neg.count()
    neg = neg.join(pos.select("galaxy_id"), on="galaxy_id", how="left_anti")
    dropped["negatives_overlapping_positives"] = before - neg.count()
    rows = pos.unionByName(neg)
    if cutouts is not None:
        # one verdict per galaxy: a duplicated cutout row must not duplicate a manifest row
        ok = cutouts.groupBy("galaxy_id").agg(F.min(F.col("cutout_ok").cast("boolean")).alias("_cutout_ok"))
        rows = rows.join(ok, on="galaxy_id", how="left")
        if cfg.require_cutout_ok:
            n = rows.count()
            rows = rows.filter(F.col("_cutout_ok"))
            dropped["cutout_missing_or_bad"] = n - rows.count()
        rows = rows.drop("_cutout_ok")
    s = split
    rows = rows.withColumn("split", split_col("healpix_128", s.seed, s.fractions, s.scheme, s.names))
    rows = rows.withColumn("stamp_ref", _stamp_ref(cfg, cutouts_uri if cutouts is not None else None))
    return rows.select(*MANIFEST_COLUMNS), dropped
