"""Binary-classification metrics: the ONE definition used by training, evaluation and reports.

ROC and precision-recall curves, ROC AUC, average precision and confusion counts come from
scikit-learn (``sklearn.metrics``, all operating points kept: ``drop_intermediate=False``); this
module adds only what scikit-learn lacks: the operating point at a fixed FPR (with its tie rule
below), reliability bins with weights and empty bins, ECE, and per-stratum tables.

Conventions:

* ``y`` are labels in {0, 1} (1 = lens), ``s`` are scores where larger means "more lens-like"
  (logits or probabilities; rank metrics do not care which), ``p`` are probabilities in [0, 1].
* A sample is called positive when ``s >= threshold``.
* Ties are handled exactly: tied scores form one operating point (a threshold cannot split
  them), so ROC AUC equals the Mann-Whitney probability P(s+ > s-) + 0.5 P(s+ = s-), and
  :func:`tpr_at_fpr` / :func:`threshold_at_fpr` never pick a point inside a block of tied scores:
  when a tie straddles the FPR budget the whole block is left out (the reported FPR is <= the
  budget, the TPR is what a real threshold achieves, never an interpolation).
* Metrics that are undefined for the data (e.g. AUC with one class) raise ``ValueError``;
  :func:`stratified_metrics` turns that into NaN per stratum.
"""
from __future__ import annotations

from typing import Callable, Dict, NamedTuple, Sequence

import numpy as np

__all__ = [
    "roc_curve",
    "roc_auc",
    "tpr_at_fpr",
    "threshold_at_fpr",
    "precision_recall_curve",
    "precision_at_recall",
    "recall_at_precision",
    "average_precision",
    "recall_at_threshold",
    "fpr_at_threshold",
    "confusion_at_threshold",
    "expected_calibration_error",
    "reliability_curve",
    "ReliabilityCurve",
    "bin_labels",
    "stratified_metrics",
    "binary_summary",
]


def _prepare(y, s, sample_weight=None):
    """Validate and return (y bool, s float64, w float64) as 1-D arrays."""
    y = np.asarray(y).ravel()
    s = np.asarray(s, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"labels and scores differ in length: {y.size} vs {s.size}")
    if y.size == 0:
        raise ValueError("metrics need at least one sample")
    if y.dtype != bool:
        uniq = np.unique(y)
        if not np.all(np.isin(uniq, (0, 1))):
            raise ValueError(f"labels must be 0/1 or bool, got values {uniq[:5].tolist()}")
        y = y.astype(bool)
    if not np.all(np.isfinite(s)):
        raise ValueError(f"scores contain {int(np.sum(~np.isfinite(s)))} non-finite values")
    if sample_weight is None:
        w = np.ones(y.size, dtype=np.float64)
    else:
        w = np.asarray(sample_weight, dtype=np.float64).ravel()
        if w.shape != y.shape:
            raise ValueError(f"sample_weight length {w.size} != {y.size} samples")
        if not np.all(np.isfinite(w)) or np.any(w < 0):
            raise ValueError("sample_weight must be finite and non-negative")
    return y, s, w


def _need_both(y, w, what: str) -> None:
    pos, neg = float(np.sum(w[y])), float(np.sum(w[~y]))
    if pos <= 0 or neg <= 0:
        raise ValueError(f"{what} needs both positive and negative samples "
                         f"(positive weight {pos:g}, negative weight {neg:g})")


def roc_curve(y, s, sample_weight=None):
    """ROC curve (``sklearn.metrics.roc_curve``): (fpr, tpr, thresholds), one point per distinct
    score plus the origin.

    ``thresholds[0]`` is +inf (nothing called positive); point i calls ``s >= thresholds[i]``
    positive. Intermediate collinear points are kept (``drop_intermediate=False``).
    """
    from sklearn.metrics import roc_curve as sk_roc_curve

    y, s, w = _prepare(y, s, sample_weight)
    _need_both(y, w, "roc_curve")
    fpr, tpr, thr = sk_roc_curve(y, s, sample_weight=w, drop_intermediate=False)
    return fpr, tpr, thr


def roc_auc(y, s, sample_weight=None) -> float:
    """Area under the ROC curve (``sklearn.metrics.roc_auc_score``; ties count one half)."""
    from sklearn.metrics import roc_auc_score

    y, s, w = _prepare(y, s, sample_weight)
    _need_both(y, w, "roc_auc")
    return float(roc_auc_score(y, s, sample_weight=w))


def threshold_at_fpr(y, s, fpr: float, sample_weight=None) -> float:
    """Lowest score threshold whose false-positive rate is <= ``fpr`` (+inf if none is)."""
    if not 0.0 <= fpr <= 1.0:
        raise ValueError(f"fpr must be in [0, 1], got {fpr}")
    f, _, thr = roc_curve(y, s, sample_weight)
    ok = np.flatnonzero(f <= fpr + 1e-12)
    return float(thr[ok[-1]])


def tpr_at_fpr(y, s, fpr: float, sample_weight=None) -> float:
    """Largest TPR over operating points with FPR <= ``fpr`` (no interpolation between points)."""
    if not 0.0 <= fpr <= 1.0:
        raise ValueError(f"fpr must be in [0, 1], got {fpr}")
    f, t, _ = roc_curve(y, s, sample_weight)
    return float(np.max(t[f <= fpr + 1e-12]))


def precision_recall_curve(y, s, sample_weight=None):
    """(precision, recall, thresholds) in decreasing-threshold order, one point per distinct score
    (``sklearn.metrics.precision_recall_curve`` with all points kept).

    Unlike sklearn's raw output, its appended (precision=1, recall=0) end point is dropped: every
    returned point is a real operating point ``s >= thresholds[i]``.
    """
    from sklearn.metrics import precision_recall_curve as sk_pr_curve

    y, s, w = _prepare(y, s, sample_weight)
    if float(np.sum(w[y])) <= 0:
        raise ValueError("precision/recall need at least one positive sample")
    precision, recall, thr = sk_pr_curve(y, s, sample_weight=w, drop_intermediate=False)
    return precision[:-1][::-1], recall[:-1][::-1], thr[::-1]


def precision_at_recall(y, s, recall: float = 0.9, sample_weight=None) -> float:
    """Best precision among operating points reaching recall >= ``recall``."""
    precision, rec, _ = precision_recall_curve(y, s, sample_weight)
    return float(np.max(precision[rec >= recall - 1e-12]))


def recall_at_precision(y, s, precision: float = 0.9, sample_weight=None) -> float:
    """Best recall among operating points with precision >= ``precision`` (0 if none)."""
    prec, rec, _ = precision_recall_curve(y, s, sample_weight)
    ok = prec >= precision - 1e-12
    return float(np.max(rec[ok])) if np.any(ok) else 0.0


def average_precision(y, s, sample_weight=None) -> float:
    """Average precision, sum_n (R_n - R_{n-1}) P_n (``sklearn.metrics.average_precision_score``)."""
    from sklearn.metrics import average_precision_score

    y, s, w = _prepare(y, s, sample_weight)
    if float(np.sum(w[y])) <= 0:
        raise ValueError("precision/recall need at least one positive sample")
    return float(average_precision_score(y, s, sample_weight=w))


def confusion_at_threshold(y, s, threshold: float, sample_weight=None) -> Dict[str, float]:
    """Weighted confusion counts {tp, fp, tn, fn} calling ``s >= threshold`` positive
    (``sklearn.metrics.confusion_matrix``)."""
    from sklearn.metrics import confusion_matrix

    y, s, w = _prepare(y, s, sample_weight)
    tn, fp, fn, tp = confusion_matrix(y, s >= threshold, labels=[False, True], sample_weight=w).ravel()
    return {"tp": float(tp), "fp": float(fp), "tn": float(tn), "fn": float(fn)}


def recall_at_threshold(y, s, threshold: float, sample_weight=None) -> float:
    """Fraction of positives (weighted) with ``s >= threshold``; NaN without positives."""
    c = confusion_at_threshold(y, s, threshold, sample_weight)
    n = c["tp"] + c["fn"]
    return c["tp"] / n if n > 0 else float("nan")


def fpr_at_threshold(y, s, threshold: float, sample_weight=None) -> float:
    """Fraction of negatives (weighted) with ``s >= threshold``; NaN without negatives."""
    c = confusion_at_threshold(y, s, threshold, sample_weight)
    n = c["fp"] + c["tn"]
    return c["fp"] / n if n > 0 else float("nan")


class ReliabilityCurve(NamedTuple):
    """Equal-width probability bins: ``edges`` (n_bins+1), per-bin ``count``, ``mean_pred``,
    ``frac_pos`` (NaN in empty bins)."""

    edges: np.ndarray
    count: np.ndarray
    mean_pred: np.ndarray
    frac_pos: np.ndarray


def reliability_curve(y, p, n_bins: int = 15, sample_weight=None) -> ReliabilityCurve:
    """Reliability diagram data; bin i is [i/n, (i+1)/n), the last bin also holds p == 1."""
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    y, p, w = _prepare(y, p, sample_weight)
    if np.any((p < 0) | (p > 1)):
        raise ValueError("probabilities must lie in [0, 1]")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.clip((p * n_bins).astype(np.int64), 0, n_bins - 1)
    count = np.bincount(idx, weights=w, minlength=n_bins)
    sum_p = np.bincount(idx, weights=w * p, minlength=n_bins)
    sum_y = np.bincount(idx, weights=w * y, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_pred = np.where(count > 0, sum_p / count, np.nan)
        frac_pos = np.where(count > 0, sum_y / count, np.nan)
    return ReliabilityCurve(edges, count, mean_pred, frac_pos)


def expected_calibration_error(y, p, n_bins: int = 15, sample_weight=None) -> float:
    """ECE = sum_b (n_b / N) |frac_pos_b - mean_pred_b| over equal-width bins."""
    rc = reliability_curve(y, p, n_bins, sample_weight)
    filled = rc.count > 0
    gap = np.abs(rc.frac_pos[filled] - rc.mean_pred[filled])
    return float(np.sum(rc.count[filled] * gap) / np.sum(rc.count))


def bin_labels(values, edges: Sequence[float], fmt: str = "{lo:g}-{hi:g}") -> np.ndarray:
    """Label each value by the half-open bin [edges[i], edges[i+1]) it falls in.

    Values outside the edges or non-finite get the label "out-of-range"; used to stratify by
    PSF FWHM (arcsec), depth (AB mag) or nobs_z.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    e = np.asarray(edges, dtype=np.float64)
    if e.ndim != 1 or e.size < 2 or np.any(np.diff(e) <= 0):
        raise ValueError(f"bin edges must be strictly increasing with >= 2 entries, got {list(edges)}")
    names = np.array([fmt.format(lo=lo, hi=hi) for lo, hi in zip(e[:-1], e[1:])] + ["out-of-range"])
    idx = np.searchsorted(e, v, side="right") - 1
    idx = np.where(np.isfinite(v) & (idx >= 0) & (idx < e.size - 1), idx, e.size - 1)
    return names[idx]


MetricFn = Callable[..., float]


def stratified_metrics(
    y,
    s,
    strata,
    metrics: Dict[str, MetricFn],
    sample_weight=None,
    min_count: int = 1,
) -> list:
    """Evaluate ``metrics`` (name -> fn(y, s)) within each stratum label.

    Returns one dict per stratum (sorted by label): {"stratum", "n", "n_pos", "n_neg", <name>: value}.
    A metric that is undefined in a stratum (one class only, fewer than ``min_count`` samples)
    is NaN rather than an error. ``sample_weight`` is passed through when given.
    """
    y, s, w = _prepare(y, s, sample_weight)
    strata = np.asarray(strata).ravel()
    if strata.shape != y.shape:
        raise ValueError(f"strata length {strata.size} != {y.size} samples")
    rows = []
    for label in np.unique(strata):
        sel = strata == label
        row = {"stratum": label.item() if hasattr(label, "item") else label,
               "n": int(sel.sum()), "n_pos": int(y[sel].sum()), "n_neg": int((~y[sel]).sum())}
        for name, fn in metrics.items():
            if row["n"] < min_count:
                row[name] = float("nan")
                continue
            try:
                kw = {} if sample_weight is None else {"sample_weight": w[sel]}
                row[name] = float(fn(y[sel], s[sel], **kw))
            except ValueError:
                row[name] = float("nan")
        rows.append(row)
    return rows


def binary_summary(y, s, sample_weight=None, fprs: Sequence[float] = (0.01, 0.001),
                   threshold: float | None = None) -> Dict[str, float]:
    """The headline metric set: AUC, TPR@FPR for each ``fprs``, P@R0.9, R@P0.9, AP, counts,
    and recall/FPR at ``threshold`` when given."""
    y, s, w = _prepare(y, s, sample_weight)
    out: Dict[str, float] = {"n": int(y.size), "n_pos": int(y.sum()), "n_neg": int((~y).sum())}
    out["roc_auc"] = roc_auc(y, s, w)
    for f in fprs:
        out[f"tpr_at_fpr_{f:g}"] = tpr_at_fpr(y, s, f, w)
    out["precision_at_recall_0.9"] = precision_at_recall(y, s, 0.9, w)
    out["recall_at_precision_0.9"] = recall_at_precision(y, s, 0.9, w)
    out["average_precision"] = average_precision(y, s, w)
    if threshold is not None:
        out["threshold"] = float(threshold)
        out["recall_at_threshold"] = recall_at_threshold(y, s, threshold, w)
        out["fpr_at_threshold"] = fpr_at_threshold(y, s, threshold, w)
    return out
