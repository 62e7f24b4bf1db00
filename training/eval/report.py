"""The metric report of one model's predictions on the validation and test splits.

Input: a predictions table (pandas) with one row per scored stamp:

* ``id``, ``split`` (val | test | ...), ``label`` (0/1), ``logit`` (uncalibrated), ``kind``
  (pos | ctrl | hardneg | plain; hard negatives are kept out of the headline metrics);
* optional: ``tier`` (A | B | N1 | N2), ``confuser_category``, ``psfsize_r`` [arcsec],
  ``psfdepth_r_mag5`` [AB mag], ``nobs_z_bin``, ``healpix_128`` (NESTED) or ``ra``/``dec`` [deg].

Everything that is fitted (temperature, FPR-matched thresholds) uses validation rows only and is
then applied to test. Intervals: stratified (by label) i.i.d. bootstrap and HEALPix region
bootstrap for the headline metrics (the region bootstrap only with at least ``min_regions``
regions; with fewer it is recorded as skipped, never shown as an interval), Wilson 95% for rates
at a threshold.

``operating_points`` are the headline numbers: for each target FPR, the cut on calibrated p fitted
on the validation negatives, and the test TPR and FPR at that cut with Wilson intervals. A target
FPR below 1/n of the validation negatives cannot be resolved (no cut gives it); it is marked
``resolved: false`` and its cut is the strictest one the negatives allow (none of them above).
The negatives are named (``negatives``): paired same-host controls in paired mode, held-out
labelled negatives in plain mode.
"""
from __future__ import annotations

from typing import Dict, List

import numpy as np
import pandas as pd
from pydantic import Field

from dhs_gen.config import StrictModel
from dhs_gen.stats.bootstrap import bootstrap_ci, healpix_regions, region_bootstrap_ci
from dhs_gen.stats.intervals import wilson_interval
from dhs_gen.stats.metrics import (
    average_precision,
    bin_labels,
    binary_summary,
    fpr_at_threshold,
    recall_at_threshold,
    roc_auc,
    stratified_metrics,
    threshold_at_fpr,
    tpr_at_fpr,
)
from training.eval.calibration import calibrated_proba, calibration_report, fit_temperature

HEALPIX_NSIDE_SOURCE = 128


class ReportConfig(StrictModel):
    """What the metric report computes (configs/eval.yaml ``report:``)."""

    val_split: str = "val"
    test_split: str = "test"
    threshold: float = Field(0.5, gt=0, lt=1, description="operating threshold on calibrated p")
    fprs: List[float] = Field(default_factory=lambda: [0.01, 0.001])
    n_bins: int = Field(15, ge=2, description="ECE / reliability bins")
    n_boot: int = Field(300, ge=0, description="bootstrap replicates (0 = no CIs)")
    seed: int = 0
    region_nside: int = Field(16, description="HEALPix nside of the region bootstrap blocks")
    min_regions: int = Field(10, ge=2, description="fewest regions for a region bootstrap to be reported")
    psf_bins: List[float] = Field(default_factory=lambda: [0.5, 1.0, 1.2, 1.4, 1.7, 3.0], description="arcsec")
    depth_bins: List[float] = Field(default_factory=lambda: [21.5, 23.0, 23.5, 24.0, 24.5, 26.0],
                                    description="psfdepth_r_mag5 [AB mag]")


def coarse_healpix(pred: pd.DataFrame, nside: int) -> np.ndarray | None:
    """Region labels at ``nside``: from NESTED ``healpix_128`` (integer division, exact for NESTED)
    or from ``ra``/``dec``; None when neither is available."""
    if "healpix_128" in pred and pred["healpix_128"].notna().all():
        if nside > HEALPIX_NSIDE_SOURCE or HEALPIX_NSIDE_SOURCE % nside:
            raise ValueError(f"region_nside must divide {HEALPIX_NSIDE_SOURCE}, got {nside}")
        factor = (HEALPIX_NSIDE_SOURCE // nside) ** 2
        return pred["healpix_128"].to_numpy(np.int64) // factor
    if {"ra", "dec"} <= set(pred.columns) and pred[["ra", "dec"]].notna().all().all():
        return healpix_regions(pred["ra"].to_numpy(), pred["dec"].to_numpy(), nside=nside)
    return None


def _rate(k: int, n: int) -> Dict[str, float]:
    lo, hi = wilson_interval(k, n)
    return {"k": int(k), "n": int(n), "rate": (k / n) if n else float("nan"), "lo": float(lo), "hi": float(hi)}


def _headline_cis(y, p, regions, cfg: ReportConfig) -> Dict[str, dict]:
    fns = {"roc_auc": roc_auc, "average_precision": average_precision}
    for f in cfg.fprs:
        fns[f"tpr_at_fpr_{f:g}"] = (lambda ff: lambda yy, ss, sample_weight=None: tpr_at_fpr(yy, ss, ff, sample_weight))(f)
    out = {}
    n_regions = 0 if regions is None else len(np.unique(regions))
    for name, fn in fns.items():
        entry = {"iid": bootstrap_ci(fn, y, p, n_boot=cfg.n_boot, seed=cfg.seed, strata=y).as_dict()}
        if n_regions >= cfg.min_regions:
            entry["region"] = region_bootstrap_ci(fn, y, p, regions=regions, n_boot=cfg.n_boot,
                                                  seed=cfg.seed).as_dict()
        elif regions is not None:
            entry["region_skipped"] = {"n_regions": n_regions, "min_regions": cfg.min_regions,
                                       "reason": f"only {n_regions} HEALPix regions at nside {cfg.region_nside} "
                                                 f"(< {cfg.min_regions}): a region bootstrap would understate "
                                                 "the spread; the i.i.d. interval is reported"}
        out[name] = entry
    return out


def negatives_name(frame: pd.DataFrame) -> str:
    """What the negatives of a split are (the FPR definition): paired controls or labelled negatives."""
    kinds = set(frame.loc[frame["label"] == 0, "kind"]) if "kind" in frame else {"plain"}
    if kinds == {"ctrl"}:
        return "paired same-host controls"
    return "held-out labelled negatives"


def operating_points(val: pd.DataFrame, test: pd.DataFrame, fprs, val_split: str = "val") -> List[dict]:
    """Per target FPR: cut on calibrated p fitted on ``val`` negatives, test TPR/FPR at it (Wilson 95%).

    ``resolved`` is False when the target is below 1 / (number of validation negatives); the cut is
    then the strictest the validation allows (no negative at or above it), and
    ``min_resolvable_fpr`` = 1/n says what the data can resolve. ``test_fpr_resolved`` likewise for
    the test negatives (a test FPR of 0/n only says FPR < ~1/n).
    """
    yv, pv = val["label"].to_numpy(int), val["p"].to_numpy()
    yt, pt = test["label"].to_numpy(int), test["p"].to_numpy()
    n_val_neg, n_pos, n_neg = int((yv == 0).sum()), int((yt == 1).sum()), int((yt == 0).sum())
    out = []
    for f in sorted(fprs, reverse=True):
        cut = threshold_at_fpr(yv, pv, f)
        out.append({
            "target_fpr": float(f), "cut_p": float(cut), "fitted_on": val_split,
            "negatives": negatives_name(val),
            "n_val_negatives": n_val_neg, "val_negatives_above": int((pv[yv == 0] >= cut).sum()),
            "resolved": bool(f * n_val_neg >= 1.0), "min_resolvable_fpr": 1.0 / n_val_neg,
            "test_tpr": _rate(int((pt[yt == 1] >= cut).sum()), n_pos),
            "test_fpr": _rate(int((pt[yt == 0] >= cut).sum()), n_neg),
            "test_fpr_resolved": bool(f * n_neg >= 1.0),
        })
    return out


def split_frame(pred: pd.DataFrame, split: str) -> pd.DataFrame:
    """Rows of one split used for the headline metrics (hard negatives excluded)."""
    sel = (pred["split"] == split) & (pred.get("kind", "plain") != "hardneg")
    frame = pred[sel]
    if frame.empty or frame["label"].nunique() < 2:
        raise ValueError(f"split {split!r} needs positives and negatives (found {len(frame)} rows, "
                         f"labels {sorted(frame['label'].unique().tolist())})")
    return frame


def analyze_predictions(pred: pd.DataFrame, cfg: ReportConfig) -> Dict[str, object]:
    """Calibration, headline metrics with CIs, tier recall, confuser FPR, strata, val vs test.

    Adds a ``p`` column (calibrated probability) to ``pred`` in place.
    """
    missing = {"id", "split", "label", "logit"} - set(pred.columns)
    if missing:
        raise ValueError(f"predictions lack columns {sorted(missing)}")
    val = split_frame(pred, cfg.val_split)
    temperature = fit_temperature(val["logit"].to_numpy(), val["label"].to_numpy())
    pred["p"] = calibrated_proba(pred["logit"].to_numpy(), temperature)
    val = split_frame(pred, cfg.val_split)
    test = split_frame(pred, cfg.test_split)
    yv, pv = val["label"].to_numpy(int), val["p"].to_numpy()
    yt, pt = test["label"].to_numpy(int), test["p"].to_numpy()

    thresholds = {"p": cfg.threshold}
    for f in cfg.fprs:
        thresholds[f"val_fpr_{f:g}"] = threshold_at_fpr(yv, pv, f)
    report: Dict[str, object] = {
        "temperature": temperature,
        "calibration": {"val": calibration_report(yv, val["logit"], temperature, cfg.n_bins),
                        "test": calibration_report(yt, test["logit"], temperature, cfg.n_bins)},
        "thresholds": thresholds,
        "metrics": {cfg.val_split: binary_summary(yv, pv, fprs=cfg.fprs, threshold=cfg.threshold),
                    cfg.test_split: binary_summary(yt, pt, fprs=cfg.fprs, threshold=cfg.threshold)},
    }
    report["operating_points"] = operating_points(val, test, cfg.fprs, cfg.val_split)
    report["negatives"] = {cfg.val_split: negatives_name(val), cfg.test_split: negatives_name(test)}
    report["prevalence"] = {split: float(f["label"].mean()) for split, f in ((cfg.val_split, val),
                                                                            (cfg.test_split, test))}
    report["metrics"][cfg.test_split]["at_val_thresholds"] = {
        name: {"threshold": t, "recall": recall_at_threshold(yt, pt, t), "fpr": fpr_at_threshold(yt, pt, t)}
        for name, t in thresholds.items()}
    if cfg.n_boot:
        report["intervals"] = {
            split: _headline_cis(f["label"].to_numpy(int), f["p"].to_numpy(), coarse_healpix(f, cfg.region_nside), cfg)
            for split, f in ((cfg.val_split, val), (cfg.test_split, test))}
    report["tiers"] = tier_recall(test, thresholds)
    report["confusers"] = confuser_fpr(test, cfg.threshold)
    report["strata"] = strata_metrics(test, cfg)
    report["val_vs_test"] = val_vs_test(report, cfg)
    hard = pred[(pred["split"] == cfg.test_split) & (pred.get("kind", "plain") == "hardneg")]
    if len(hard):
        report["hard_negatives"] = {"n": int(len(hard)), "mean_p": float(hard["p"].mean()),
                                    "fpr_at_threshold": _rate(int((hard["p"] >= cfg.threshold).sum()), len(hard))}
    return report


def val_vs_test(report: dict, cfg: ReportConfig) -> Dict[str, object]:
    """Test minus validation ROC AUC (disjoint HEALPix regions: spatial generalisation), with a
    normal-approximation 95% interval from the two independent bootstraps (region when available)."""
    v = report["metrics"][cfg.val_split]["roc_auc"]
    t = report["metrics"][cfg.test_split]["roc_auc"]
    out: Dict[str, object] = {"roc_auc_val": v, "roc_auc_test": t, "difference": t - v}
    cis = report.get("intervals")
    if cis:
        kind = "region" if "region" in cis[cfg.val_split]["roc_auc"] and "region" in cis[cfg.test_split]["roc_auc"] \
            else "iid"
        sd = float(np.hypot(cis[cfg.val_split]["roc_auc"][kind]["std"], cis[cfg.test_split]["roc_auc"][kind]["std"]))
        out.update({"lo": t - v - 1.96 * sd, "hi": t - v + 1.96 * sd, "bootstrap": kind})
    return out


def tier_recall(test: pd.DataFrame, thresholds: Dict[str, float]) -> Dict[str, dict]:
    """Recall of tier-A and tier-B positives at each threshold, Wilson 95%."""
    if "tier" not in test:
        return {}
    out = {}
    pos = test[test["label"] == 1]
    for tier in ("A", "B"):
        rows = pos[pos["tier"] == tier]
        if len(rows):
            out[tier] = {name: _rate(int((rows["p"] >= t).sum()), len(rows)) for name, t in thresholds.items()}
    return out


def confuser_fpr(test: pd.DataFrame, threshold: float) -> List[dict]:
    """FPR at ``threshold`` per N2 confuser category (N1 / uncategorised negatives as "none")."""
    if "confuser_category" not in test:
        return []
    neg = test[test["label"] == 0]
    cats = neg["confuser_category"].fillna("none").astype(str)
    rows = []
    for cat in sorted(cats.unique()):
        p = neg.loc[cats == cat, "p"]
        r = _rate(int((p >= threshold).sum()), len(p))
        rows.append({"category": cat, "fpr": r["rate"], "lo": r["lo"], "hi": r["hi"], "n": r["n"], "k": r["k"]})
    return rows


def strata_metrics(test: pd.DataFrame, cfg: ReportConfig) -> Dict[str, list]:
    """Test metrics by PSF FWHM, depth and nobs_z bins (NaN where a stratum lacks a class)."""
    thr = cfg.threshold
    fns = {"roc_auc": roc_auc,
           "recall_at_threshold": lambda y, s, sample_weight=None: recall_at_threshold(y, s, thr, sample_weight),
           "fpr_at_threshold": lambda y, s, sample_weight=None: fpr_at_threshold(y, s, thr, sample_weight)}
    y, p = test["label"].to_numpy(int), test["p"].to_numpy()
    out = {}
    axes = {"psfsize_r": cfg.psf_bins, "psfdepth_r_mag5": cfg.depth_bins}
    for col, edges in axes.items():
        if col in test and test[col].notna().any():
            out[col] = stratified_metrics(y, p, bin_labels(test[col].to_numpy(np.float64), edges), fns)
    if "nobs_z_bin" in test:
        out["nobs_z_bin"] = stratified_metrics(y, p, test["nobs_z_bin"].fillna("unknown").astype(str).to_numpy(), fns)
    return out
