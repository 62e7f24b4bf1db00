"""Paired comparisons of scorers evaluated on the same rows: is a difference between variants real?

Every statistic here compares models scored on one shared test set, so the resamples are shared
too: a HEALPix region bootstrap draws sky regions with replacement and applies the *same* draw to
every model (the rows' sky correlation stays inside a block, and the pairing cancels the noise the
models have in common). Each model's cut at a target FPR is recomputed on the negatives of every
replicate, so the cut's own uncertainty is inside the interval.

Conventions (all scores are logits; higher means "lens"):

* cut at FPR f: the lowest threshold t with (weighted) fraction of negatives scoring > t at most f;
  TPR is the (weighted) fraction of positives scoring > t (ties with the cut count as negative).
* AUC counts ties as one half (the Mann–Whitney convention).
* p-values of the bootstrap are two-sided, from the replicate distribution centred on the
  estimate: p = (1 + #{|Δ* − Δ| >= |Δ|}) / (1 + B).
* McNemar: exact binomial test on the discordant positives at each model's fixed cut.
* Holm's step-down correction controls the family-wise error when many variants are compared with
  one baseline.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Dict, Mapping, Sequence

import numpy as np

from dhs_gen.stats.bootstrap import region_multiplicities


def weighted_cut_at_fpr(neg_scores: np.ndarray, weights: np.ndarray, fpr: float) -> np.ndarray:
    """Cut per replicate: lowest threshold with weighted FPR <= ``fpr``.

    ``neg_scores`` (n,) logits of the negatives; ``weights`` (B, n) draw counts. Returns (B,).
    """
    order = np.argsort(-neg_scores, kind="stable")
    s = neg_scores[order]
    w = weights[:, order]
    above = np.cumsum(w, axis=1) - w  # weight of negatives strictly above s[i] when i starts a tie group
    first_of_tie = np.r_[True, s[1:] != s[:-1]]
    ok = (above <= fpr * w.sum(axis=1, keepdims=True)) & first_of_tie
    # admissible positions form a prefix (``above`` grows with i); its last one is the lowest cut
    return s[s.size - 1 - np.argmax(ok[:, ::-1], axis=1)]


def weighted_tpr_above(pos_scores: np.ndarray, weights: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    """Weighted fraction of positives scoring strictly above each replicate's cut. Returns (B,)."""
    passed = pos_scores[None, :] > cuts[:, None]
    total = weights.sum(axis=1)
    return np.where(total > 0, (weights * passed).sum(axis=1) / np.maximum(total, 1e-300), np.nan)


def weighted_auc(pos_scores: np.ndarray, neg_scores: np.ndarray, w_pos: np.ndarray, w_neg: np.ndarray
                 ) -> np.ndarray:
    """Mann–Whitney AUC (ties count 1/2) for every replicate's weights; (B, n_pos), (B, n_neg) -> (B,)."""
    order = np.argsort(neg_scores, kind="stable")
    s_neg = neg_scores[order]
    cum = np.concatenate([np.zeros((w_neg.shape[0], 1)), np.cumsum(w_neg[:, order], axis=1)], axis=1)
    lo = np.searchsorted(s_neg, pos_scores, side="left")
    hi = np.searchsorted(s_neg, pos_scores, side="right")
    below = cum[:, lo] + 0.5 * (cum[:, hi] - cum[:, lo])  # (B, n_pos): weight of negatives beaten
    denom = w_pos.sum(axis=1) * w_neg.sum(axis=1)
    return (w_pos * below).sum(axis=1) / np.where(denom > 0, denom, np.nan)


@dataclass(frozen=True)
class PairedDifference:
    """Variant minus baseline on one metric: estimate, percentile interval, bootstrap p-value."""

    metric: str
    variant: str
    baseline: str
    estimate: float
    lo: float
    hi: float
    p_value: float
    n_boot: int
    level: float

    def as_dict(self) -> dict:
        return asdict(self)


def _percentile_ci(reps: np.ndarray, estimate: float, level: float) -> tuple[float, float, float]:
    reps = reps[np.isfinite(reps)]
    if reps.size < 2 or not np.isfinite(estimate):
        return np.nan, np.nan, np.nan
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(reps, [alpha, 1.0 - alpha])
    p = (1.0 + np.sum(np.abs(reps - estimate) >= abs(estimate))) / (1.0 + reps.size)
    return float(lo), float(hi), float(min(p, 1.0))


def _metrics(pos: np.ndarray, neg: np.ndarray, w_pos: np.ndarray, w_neg: np.ndarray,
             fprs: Sequence[float]) -> Dict[str, np.ndarray]:
    out = {"auc": weighted_auc(pos, neg, w_pos, w_neg)}
    for f in fprs:
        out[f"tpr@{f:g}"] = weighted_tpr_above(pos, w_pos, weighted_cut_at_fpr(neg, w_neg, f))
    return out


def _seed_mean_metrics(runs: np.ndarray, y: np.ndarray, w_pos: np.ndarray, w_neg: np.ndarray,
                       fprs: Sequence[float]) -> Dict[str, np.ndarray]:
    """Metrics of one model averaged over its seeds (rows of ``runs``), per replicate."""
    per_seed = [_metrics(s[y], s[~y], w_pos, w_neg, fprs) for s in runs]
    return {m: np.mean([d[m] for d in per_seed], axis=0) for m in per_seed[0]}


def paired_region_bootstrap(labels, scores: Mapping[str, np.ndarray], regions, baseline: str, *,
                            fprs: Sequence[float] = (1e-2, 1e-3), n_boot: int = 1000, seed: int = 0,
                            level: float = 0.95) -> list[PairedDifference]:
    """ΔAUC and ΔTPR at each FPR of every model in ``scores`` against ``baseline``.

    ``labels`` (n,) 0/1; ``scores`` name -> logits on the same rows, (n,) for one run or
    (n_seeds, n) for a variant trained with several seeds (its metric is the mean over seeds, so
    the interval holds the data's uncertainty; report the seed spread beside it); ``regions`` (n,)
    sky region label (e.g. HEALPix NESTED pixel) of each row. Every model is resampled with the
    same region draws and its cut is recomputed in each replicate.
    """
    y = np.asarray(labels).astype(bool).ravel()
    regions = np.asarray(regions).ravel()
    if baseline not in scores:
        raise ValueError(f"baseline {baseline!r} is not among the scored models {sorted(scores)}")
    runs = {k: np.atleast_2d(np.asarray(v, dtype=np.float64)) for k, v in scores.items()}
    for name, s in runs.items():
        if s.ndim != 2 or s.shape[1] != y.size or regions.size != y.size:
            raise ValueError(f"model {name!r}: scores {s.shape}, {y.size} labels, {regions.size} regions differ")
        if not np.all(np.isfinite(s)):
            raise ValueError(f"model {name!r} has non-finite logits")
    if y.all() or not y.any():
        raise ValueError("paired comparison needs both positives and negatives")
    w = np.stack(list(region_multiplicities(regions, n_boot, seed)))
    ones_p, ones_n = np.ones((1, int(y.sum()))), np.ones((1, int((~y).sum())))
    point = {k: _seed_mean_metrics(s, y, ones_p, ones_n, fprs) for k, s in runs.items()}
    reps = {k: _seed_mean_metrics(s, y, w[:, y], w[:, ~y], fprs) for k, s in runs.items()}
    out = []
    for name in runs:
        if name == baseline:
            continue
        for metric in point[name]:
            est = float(point[name][metric][0] - point[baseline][metric][0])
            lo, hi, p = _percentile_ci(reps[name][metric] - reps[baseline][metric], est, level)
            out.append(PairedDifference(metric, name, baseline, est, lo, hi, p, n_boot, level))
    return out


def seed_spread(labels, runs, fprs: Sequence[float] = (1e-2, 1e-3)) -> Dict[str, dict]:
    """Mean and standard deviation over seeds of each metric of one variant; ``runs`` (n_seeds, n)."""
    y = np.asarray(labels).astype(bool).ravel()
    runs = np.atleast_2d(np.asarray(runs, dtype=np.float64))
    ones_p, ones_n = np.ones((1, int(y.sum()))), np.ones((1, int((~y).sum())))
    per_seed = [_metrics(s[y], s[~y], ones_p, ones_n, fprs) for s in runs]
    return {m: {"mean": float(np.mean([d[m][0] for d in per_seed])),
                "std": float(np.std([d[m][0] for d in per_seed], ddof=1)) if len(per_seed) > 1 else 0.0,
                "per_seed": [float(d[m][0]) for d in per_seed]} for m in per_seed[0]}


def mcnemar_exact(detected_a, detected_b) -> dict:
    """Exact McNemar test on paired detections (booleans on the same positives).

    Returns the discordant counts (``a_only``, ``b_only``) and the two-sided exact p-value of the
    binomial test of ``a_only`` out of ``a_only + b_only`` at 1/2 (p = 1 with no discordant pair).
    """
    from scipy.stats import binomtest

    a = np.asarray(detected_a, dtype=bool).ravel()
    b = np.asarray(detected_b, dtype=bool).ravel()
    if a.shape != b.shape:
        raise ValueError(f"paired detections differ in length: {a.size} vs {b.size}")
    a_only, b_only = int(np.sum(a & ~b)), int(np.sum(~a & b))
    n = a_only + b_only
    p = 1.0 if n == 0 else float(binomtest(a_only, n, 0.5).pvalue)
    return {"a_only": a_only, "b_only": b_only, "n_discordant": n, "p_value": p}


def holm_adjust(p_values: Sequence[float], alpha: float = 0.05) -> dict:
    """Holm's step-down adjusted p-values and rejections (family-wise error <= ``alpha``)."""
    p = np.asarray(p_values, dtype=np.float64)
    m = p.size
    order = np.argsort(p, kind="stable")
    adjusted_sorted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    adjusted = np.empty(m)
    adjusted[order] = adjusted_sorted
    return {"adjusted": adjusted.tolist(), "reject": (adjusted <= alpha).tolist()}


def cut_at_fpr(neg_scores, fpr: float) -> float:
    """The cut at ``fpr`` on one set of negatives (e.g. validation, then applied to test rows)."""
    neg = np.asarray(neg_scores, dtype=np.float64).ravel()
    if neg.size == 0:
        raise ValueError("a cut at fixed FPR needs negatives")
    return float(weighted_cut_at_fpr(neg, np.ones((1, neg.size)), fpr)[0])
