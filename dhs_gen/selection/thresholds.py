"""Recovery thresholds: the score cut that gives a target false-positive rate on negatives."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dhs_gen.schemas import STATUS_OK
from dhs_gen.stats.intervals import wilson_interval

FPR = "fpr"
PROXY = "proxy"


@dataclass(frozen=True)
class Threshold:
    """``kind`` fpr: recovered when score > ``cut`` (``value`` is the target FPR).
    ``kind`` proxy: the phase-4d proxy with theta_E/PSF >= ``value`` (``cut`` = value)."""

    kind: str
    value: float
    cut: float


def score_cut_at_fpr(negative_scores: np.ndarray, fpr: float) -> tuple[float, int]:
    """Smallest cut among the negative scores with at most ``floor(fpr * n)`` negatives above it.

    Returns (cut, n_above); recovery is ``score > cut``. Raises when there are no finite scores.
    The achieved FPR is n_above / n <= fpr; when fpr * n < 1 the cut is the highest negative.
    """
    s = np.asarray(negative_scores, dtype=np.float64)
    s = s[np.isfinite(s)]
    if s.size == 0:
        raise ValueError("no finite negative scores to set an FPR threshold")
    k = int(np.floor(fpr * s.size))
    cut = float(-np.partition(-s, k)[k])
    return cut, int(np.count_nonzero(s > cut))


def fpr_thresholds(negatives: pa.Table, fprs, score_column: str = "logit") -> tuple[dict, pa.Table]:
    """Per model_id, the FPR thresholds on ``negatives`` (scores schema; only status 'ok' rows).

    Returns ({model_id: [Threshold]}, a table of cuts with achieved FPR and its Wilson interval).
    """
    for name in ("model_id", "status", score_column):
        if name not in negatives.column_names:
            raise KeyError(f"negative scores lack column {name!r}")
    ok = negatives.filter(pc.equal(negatives["status"], STATUS_OK))
    per_model: dict = {}
    rows = []
    for model_id in sorted(set(ok["model_id"].to_pylist()) - {None}):
        scores = ok.filter(pc.equal(ok["model_id"], model_id))[score_column]
        s = scores.cast(pa.float64()).fill_null(np.nan).to_numpy(zero_copy_only=False)
        n = int(np.isfinite(s).sum())
        per_model[model_id] = []
        for fpr in sorted(fprs, reverse=True):
            cut, above = score_cut_at_fpr(s, fpr)
            per_model[model_id].append(Threshold(FPR, float(fpr), cut))
            lo, hi = wilson_interval(above, n)
            rows.append({"model_id": model_id, "threshold_kind": FPR, "threshold_value": float(fpr),
                         "score_column": score_column, "score_cut": cut, "n_negatives": n,
                         "n_above": above, "achieved_fpr": above / n, "fpr_ci_lo": float(lo),
                         "fpr_ci_hi": float(hi), "resolved": bool(fpr * n >= 1.0)})
    if not per_model:
        raise ValueError("negative scores hold no row with status 'ok'")
    return per_model, pa.Table.from_pylist(rows)


def proxy_thresholds(values) -> list[Threshold]:
    """Phase-4d proxy thresholds on theta_E / PSF FWHM."""
    return [Threshold(PROXY, float(v), float(v)) for v in sorted(values)]
