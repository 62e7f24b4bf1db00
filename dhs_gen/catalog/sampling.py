"""Stratified, hash-deterministic negative sampling per (nobs_z_bin, type_bin) stratum.

Target of a stratum = ``negatives_per_positive`` x positives in it (or ``target_total``
shared by pool availability). Within a stratum N2 gets ``round(n2_fraction * target)`` and N1
the rest; N1 backfills an N2 shortfall. Inside each (stratum, pool) the rows with the smallest
``sample_hash = stable_hash64(seed, galaxy_id)`` (ties by galaxy_id) are taken: a total order
on row content, so the sample is the same whatever the partitioning.

The Spark version first keeps only rows under a per-group hash threshold (quota/available with
a safety margin), ranks that small candidate set with a window, and verifies each group got
min(quota, available) rows, re-ranking any short group without the prefilter: exact, without
sorting the whole pool.
"""
from __future__ import annotations

from typing import Dict, Tuple

import numpy as np
import pandas as pd

from dhs_gen.catalog.config import SamplingConfig
from dhs_gen.catalog.gates import GateResult
from dhs_gen.determinism import HASH_HEX_DIGITS, stable_hash64_many

STRATUM = ("nobs_z_bin", "type_bin")
GROUP = ("nobs_z_bin", "type_bin", "pool")
HASH_SPACE = 16**HASH_HEX_DIGITS
REPORT_COLUMNS = ["nobs_z_bin", "type_bin", "pool", "available", "requested", "quota", "taken", "shortfall"]


def stratum_targets(positive_strata: pd.DataFrame | None, availability: pd.DataFrame,
                    cfg: SamplingConfig) -> Dict[Tuple[str, str], int]:
    """Target negatives per configured stratum.

    positive_strata: one row per positive with nobs_z_bin, type_bin (None: use ``target_total``).
    availability: columns nobs_z_bin, type_bin, pool, available.
    """
    strata = [(z, t) for z in cfg.nobs_z_bins for t in cfg.type_bins]
    if positive_strata is not None:
        counts = positive_strata.groupby(list(STRATUM)).size().to_dict()
        return {s: int(round(cfg.negatives_per_positive * counts.get(s, 0))) for s in strata}
    if cfg.target_total is None:
        raise ValueError("sampling needs positives or sampling.target_total")
    avail = availability.groupby(list(STRATUM))["available"].sum().to_dict()
    weights = np.array([avail.get(s, 0) for s in strata], dtype=np.float64)
    if weights.sum() == 0:
        return {s: 0 for s in strata}
    exact = cfg.target_total * weights / weights.sum()
    base = np.floor(exact).astype(np.int64)
    order = np.argsort(-(exact - base), kind="stable")
    base[order[: cfg.target_total - int(base.sum())]] += 1
    return {s: int(b) for s, b in zip(strata, base)}


def quotas(targets: Dict[Tuple[str, str], int], availability: pd.DataFrame, n2_fraction: float) -> pd.DataFrame:
    """Per (stratum, pool): available, requested, quota (after N1 backfill) — the plan before sampling."""
    avail = availability.set_index(list(GROUP))["available"].to_dict()
    rows = []
    for (z, t), target in targets.items():
        a1, a2 = int(avail.get((z, t, "N1"), 0)), int(avail.get((z, t, "N2"), 0))
        req2 = int(round(n2_fraction * target))
        req1 = target - req2
        take2 = min(req2, a2)
        rows.append((z, t, "N1", a1, req1, target - take2))
        rows.append((z, t, "N2", a2, req2, req2))
    return pd.DataFrame(rows, columns=["nobs_z_bin", "type_bin", "pool", "available", "requested", "quota"])


def finish_report(plan: pd.DataFrame, taken: pd.DataFrame) -> pd.DataFrame:
    """Add ``taken`` (rows per group) and ``shortfall`` = max(requested - taken, 0) to a plan."""
    out = plan.merge(taken, on=list(GROUP), how="left")
    out["taken"] = out["taken"].fillna(0).astype(np.int64)
    out["shortfall"] = np.maximum(out["requested"] - out["taken"], 0)
    return out[REPORT_COLUMNS]


def summarize(report: pd.DataFrame, cfg: SamplingConfig) -> tuple[dict, list]:
    """Summary numbers and the sampling gates: total >= min_total_fraction x target, N1 fraction
    in range, every stratum represented."""
    target = int(report["requested"].sum())
    taken = int(report["taken"].sum())
    n1 = int(report.loc[report["pool"] == "N1", "taken"].sum())
    n1_frac = n1 / taken if taken else 0.0
    per_stratum = report.groupby(list(STRATUM))["taken"].sum()
    empty = [f"{z}/{t}" for (z, t), v in per_stratum.items() if v == 0]
    lo, hi = cfg.n1_fraction_range
    gates = [
        GateResult("sample_total", taken >= cfg.min_total_fraction * target,
                   f"took {taken} of target {target} (need >= {cfg.min_total_fraction:.0%})"),
        GateResult("sample_n1_fraction", lo <= n1_frac <= hi, f"N1 fraction {n1_frac:.3f} (allowed {lo}-{hi})"),
        GateResult("sample_strata_represented", not empty,
                   "every stratum represented" if not empty else f"strata with no negatives: {empty}"),
    ]
    summary = {"target": target, "taken": taken, "n1": n1, "n2": taken - n1, "n1_fraction": round(n1_frac, 6),
               "shortfall": int(report["shortfall"].sum())}
    return summary, gates


def sample_hash(seed, galaxy_ids) -> np.ndarray:
    """stable_hash64(seed, galaxy_id) as int64."""
    return stable_hash64_many(seed, galaxy_ids)


def sample_local(pool: pd.DataFrame, cfg: SamplingConfig, positive_strata: pd.DataFrame | None = None
                 ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Local (pandas) sampling: returns (sampled rows with ``sample_hash``, per-group report)."""
    pool = pool[pool["nobs_z_bin"].isin(cfg.nobs_z_bins) & pool["type_bin"].isin(cfg.type_bins)].copy()
    availability = pool.groupby(list(GROUP)).size().rename("available").reset_index()
    plan = quotas(stratum_targets(positive_strata, availability, cfg), availability, cfg.n2_fraction)
    pool["sample_hash"] = sample_hash(cfg.seed, pool["galaxy_id"].astype(str))
    pool = pool.merge(plan[list(GROUP) + ["quota"]], on=list(GROUP), how="inner")
    pool = pool.sort_values(["sample_hash", "galaxy_id"], kind="stable")
    rank = pool.groupby(list(GROUP)).cumcount()
    sampled = pool[rank < pool["quota"]].drop(columns=["quota"]).reset_index(drop=True)
    taken = sampled.groupby(list(GROUP)).size().rename("taken").reset_index()
    return sampled, finish_report(plan, taken)


def _thresholds(plan: pd.DataFrame, margin: float) -> pd.Series:
    """Per-group hash prefilter threshold: expected hash quantile of the quota, padded."""
    k = plan["quota"].to_numpy(np.float64)
    n = np.maximum(plan["available"].to_numpy(np.float64), 1.0)
    padded = k * margin + 6.0 * np.sqrt(k) + 16.0
    frac = np.minimum(padded / n, 1.0)
    return pd.Series(np.where(frac >= 1.0, HASH_SPACE, np.ceil(frac * HASH_SPACE)).astype(np.int64))


def _per_group(plan: pd.DataFrame, values) -> object:
    """Spark column: ``values[i]`` for rows of plan group i (a CASE over the few groups), else null."""
    from pyspark.sql import functions as F

    expr = F.lit(None).cast("long")
    for row, value in zip(plan.itertuples(index=False), values):
        cond = ((F.col("nobs_z_bin") == row.nobs_z_bin) & (F.col("type_bin") == row.type_bin)
                & (F.col("pool") == row.pool))
        expr = F.when(cond, F.lit(int(value))).otherwise(expr)
    return expr


def sample_spark(spark, pool_df, cfg: SamplingConfig, positive_strata: pd.DataFrame | None = None):
    """Spark sampling: returns (sampled DataFrame with ``sample_hash``, per-group report, passes).

    ``passes`` counts candidate rankings (1 unless a prefilter was too tight for some group).
    Per-group quotas and hash thresholds are CASE expressions over the few groups (no join).
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from dhs_gen.spark import stable_hash64_col

    pool_df = pool_df.filter(F.col("nobs_z_bin").isin(cfg.nobs_z_bins) & F.col("type_bin").isin(cfg.type_bins))
    counts = pool_df.groupBy(*GROUP).count().toPandas().rename(columns={"count": "available"})
    full_plan = quotas(stratum_targets(positive_strata, counts, cfg), counts, cfg.n2_fraction)
    plan = full_plan[full_plan["quota"] > 0].reset_index(drop=True)
    hashed = pool_df.withColumn("sample_hash", stable_hash64_col(cfg.seed, "galaxy_id"))
    thresholds = _thresholds(plan, cfg.candidate_margin)
    window = Window.partitionBy(*GROUP).orderBy("sample_hash", "galaxy_id")
    passes = 0
    while True:
        passes += 1
        cand = hashed.filter(F.col("sample_hash") < F.lit(int(thresholds.max() if len(plan) else 0)))
        cand = cand.filter(F.col("sample_hash") < _per_group(plan, thresholds.to_numpy()))
        sampled = (cand.withColumn("_rank", F.row_number().over(window))
                   .filter(F.col("_rank") <= _per_group(plan, plan["quota"].to_numpy()))
                   .drop("_rank")).persist()
        taken = sampled.groupBy(*GROUP).count().toPandas().rename(columns={"count": "taken"})
        check = plan.merge(taken, on=list(GROUP), how="left").fillna({"taken": 0})
        short = (check["taken"] < np.minimum(check["quota"], check["available"])).to_numpy()
        if not short.any() or (thresholds[short] >= HASH_SPACE).all():
            break
        sampled.unpersist()
        thresholds = thresholds.where(~short, HASH_SPACE)
    return sampled, finish_report(full_plan, taken), passes


def report_records(report: pd.DataFrame) -> list:
    """The report as JSON-able records."""
    return [{k: (int(v) if isinstance(v, (np.integer, int)) and not isinstance(v, bool) else v)
             for k, v in row.items()} for row in report.to_dict("records")]


def strata_of_positives(positives: pd.DataFrame) -> pd.DataFrame:
    """(nobs_z_bin, type_bin) of matched positives (status 'ok'), from their Tractor match."""
    from dhs_gen.catalog.tractor import type_bin

    ok = positives[positives["status"] == "ok"]
    return pd.DataFrame({"nobs_z_bin": ok["nobs_z_bin"].to_numpy(), "type_bin": type_bin(ok["type"].to_numpy())})

