"""Temperature scaling: p = sigmoid(logit / T), T fitted by minimum NLL on the validation split.

A single positive scalar keeps the ranking (AUC, TPR@FPR unchanged) and only fixes the
probability scale that thresholds such as p > 0.5 and the reported ECE depend on.

"Calibrated" means calibrated to the class balance of the validation split it was fitted on
(paired mode: one positive per control, prevalence 0.5), not to the sky. At a survey prevalence
pi (lenses per galaxy, e.g. 1e-3 .. 1e-4) the same p corresponds to much lower odds:
:func:`p_at_prevalence` shifts the prior (odds' = odds * [pi/(1-pi)] / [pi0/(1-pi0)]), and
:func:`purity` gives the fraction of lenses among candidates above a cut from its TPR and FPR:
TPR pi / (TPR pi + FPR (1 - pi)).
"""
from __future__ import annotations

from typing import Dict

import numpy as np

from dhs_gen.stats.metrics import expected_calibration_error, reliability_curve

LOG_T_BOUNDS = (-4.0, 4.0)  # T in [0.018, 55]


def sigmoid(z) -> np.ndarray:
    """Numerically stable logistic function (float64)."""
    z = np.asarray(z, dtype=np.float64)
    out = np.empty_like(z)
    pos = z >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-z[pos]))
    ez = np.exp(z[~pos])
    out[~pos] = ez / (1.0 + ez)
    return out


def binary_nll(logits, y, sample_weight=None) -> float:
    """Mean (weighted) binary cross-entropy of logits, computed with log1p/softplus."""
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    loss = np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))
    return float(np.average(loss, weights=sample_weight))


def _check(logits, y):
    z = np.asarray(logits, dtype=np.float64).ravel()
    y = np.asarray(y).ravel()
    if z.shape != y.shape or z.size == 0:
        raise ValueError(f"logits ({z.size}) and labels ({y.size}) must be non-empty and equal length")
    if not np.all(np.isfinite(z)):
        raise ValueError("logits contain non-finite values")
    if not set(np.unique(y).tolist()) <= {0, 1} or y.min() == y.max():
        raise ValueError("temperature scaling needs 0/1 labels with both classes present")
    return z, y.astype(np.float64)


def fit_temperature(logits, y, sample_weight=None) -> float:
    """Temperature T > 0 minimising the validation NLL of sigmoid(logits / T)."""
    from scipy.optimize import minimize_scalar

    z, y = _check(logits, y)
    res = minimize_scalar(lambda log_t: binary_nll(z / np.exp(log_t), y, sample_weight),
                          bounds=LOG_T_BOUNDS, method="bounded", options={"xatol": 1e-6})
    return float(np.exp(res.x))


def calibrated_proba(logits, temperature: float) -> np.ndarray:
    """sigmoid(logits / T) as float64."""
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    return sigmoid(np.asarray(logits, dtype=np.float64) / temperature)


def p_at_prevalence(p, prevalence: float, calibrated_prevalence: float = 0.5) -> np.ndarray:
    """Calibrated probabilities ``p`` (fitted at ``calibrated_prevalence``) moved to another class
    prevalence by Bayes' rule on the odds (float64; p = 0 and 1 stay put)."""
    for name, v in (("prevalence", prevalence), ("calibrated_prevalence", calibrated_prevalence)):
        if not 0.0 < v < 1.0:
            raise ValueError(f"{name} must be in (0, 1), got {v}")
    p = np.asarray(p, dtype=np.float64)
    factor = (prevalence / (1.0 - prevalence)) / (calibrated_prevalence / (1.0 - calibrated_prevalence))
    with np.errstate(divide="ignore", invalid="ignore"):
        odds = p / (1.0 - p) * factor
        return np.where(p >= 1.0, 1.0, odds / (1.0 + odds))


def purity(tpr, fpr, prevalence: float) -> np.ndarray:
    """Fraction of candidates above a cut that are lenses, TPR pi / (TPR pi + FPR (1 - pi)), for a
    survey prevalence ``pi``; 1 where FPR = 0 and TPR > 0, NaN where both are 0."""
    if not 0.0 < prevalence < 1.0:
        raise ValueError(f"prevalence must be in (0, 1), got {prevalence}")
    tpr, fpr = np.asarray(tpr, dtype=np.float64), np.asarray(fpr, dtype=np.float64)
    hit, false = tpr * prevalence, fpr * (1.0 - prevalence)
    with np.errstate(divide="ignore", invalid="ignore"):
        return hit / (hit + false)


def calibration_report(y, logits, temperature: float, n_bins: int = 15) -> Dict[str, object]:
    """ECE, NLL and reliability curve before (T = 1) and after temperature scaling."""
    z, yy = _check(logits, y)
    out: Dict[str, object] = {"temperature": float(temperature), "n_bins": n_bins, "n": int(z.size)}
    for key, t in (("before", 1.0), ("after", temperature)):
        p = calibrated_proba(z, t)
        rc = reliability_curve(yy, p, n_bins)
        out[key] = {"ece": expected_calibration_error(yy, p, n_bins), "nll": binary_nll(z / t, yy),
                    "reliability": {"edges": rc.edges.tolist(), "count": rc.count.tolist(),
                                    "mean_pred": rc.mean_pred.tolist(), "frac_pos": rc.frac_pos.tolist()}}
    return out
