"""Ensembles: temperature-scale each member, average the calibrated logits, recalibrate.

All fitting (member temperatures, the ensemble temperature, which member is "best") uses the
validation split only; the test split is scored once and compared with paired bootstrap CIs
(the same resamples for ensemble and best member).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Dict, Mapping, Sequence

import numpy as np

from dhs_gen.stats.bootstrap import paired_difference_ci
from dhs_gen.stats.metrics import expected_calibration_error, roc_auc, tpr_at_fpr
from training.eval.calibration import calibrated_proba, fit_temperature


@dataclass(frozen=True)
class EnsembleCalibration:
    """Member temperatures (by name), the ensemble temperature, and the validation-best member."""

    members: Sequence[str]
    member_temperatures: Dict[str, float]
    ensemble_temperature: float
    best_member: str
    val_auc: Dict[str, float]

    def as_dict(self) -> dict:
        return asdict(self)


def _stack(logits: Mapping[str, np.ndarray], members: Sequence[str]) -> np.ndarray:
    missing = [m for m in members if m not in logits]
    if missing:
        raise ValueError(f"no logits for ensemble members {missing}")
    arr = np.stack([np.asarray(logits[m], dtype=np.float64).ravel() for m in members])
    if not np.all(np.isfinite(arr)):
        raise ValueError("member logits contain non-finite values")
    return arr


def combine_logits(logits: Mapping[str, np.ndarray], member_temperatures: Mapping[str, float]) -> np.ndarray:
    """Mean over members of logit_m / T_m (the uncalibrated ensemble logit), float64 (N,)."""
    members = list(member_temperatures)
    arr = _stack(logits, members)
    t = np.array([member_temperatures[m] for m in members], dtype=np.float64)[:, None]
    return (arr / t).mean(axis=0)


def fit_ensemble(val_logits: Mapping[str, np.ndarray], y_val, sample_weight=None) -> EnsembleCalibration:
    """Fit member temperatures, the ensemble temperature and pick the best member, on validation."""
    members = sorted(val_logits)
    if not members:
        raise ValueError("an ensemble needs at least one member")
    temps = {m: fit_temperature(val_logits[m], y_val, sample_weight) for m in members}
    ens = combine_logits(val_logits, temps)
    aucs = {m: roc_auc(y_val, val_logits[m], sample_weight) for m in members}
    best = max(members, key=lambda m: (aucs[m], m))
    return EnsembleCalibration(members, temps, fit_temperature(ens, y_val, sample_weight), best, aucs)


def ensemble_proba(logits: Mapping[str, np.ndarray], calib: EnsembleCalibration) -> np.ndarray:
    """Calibrated ensemble probability sigmoid(combine_logits / T_ens)."""
    return calibrated_proba(combine_logits(logits, calib.member_temperatures), calib.ensemble_temperature)


def compare_ensemble(test_logits: Mapping[str, np.ndarray], y_test, calib: EnsembleCalibration, *,
                     n_boot: int = 1000, seed: int = 0, regions=None, fpr: float = 0.01,
                     n_bins: int = 15) -> Dict[str, object]:
    """Ensemble vs its validation-best member on test: AUC and TPR@``fpr`` with paired bootstrap
    CIs of the difference (region bootstrap when ``regions`` are given), plus calibrated ECE."""
    y = np.asarray(y_test).astype(int).ravel()
    p_ens = ensemble_proba(test_logits, calib)
    best = calib.best_member
    p_best = calibrated_proba(test_logits[best], calib.member_temperatures[best])

    def tpr(yy, ss, sample_weight=None):
        return tpr_at_fpr(yy, ss, fpr, sample_weight)

    out: Dict[str, object] = {"best_member": best, "members": list(calib.members), "n": int(y.size),
                              "calibration": calib.as_dict()}
    out["roc_auc"] = paired_difference_ci(roc_auc, y, p_ens, p_best, n_boot=n_boot, seed=seed, regions=regions)
    out[f"tpr_at_fpr_{fpr:g}"] = paired_difference_ci(tpr, y, p_ens, p_best, n_boot=n_boot, seed=seed,
                                                     regions=regions)
    out["ece"] = {"ensemble": expected_calibration_error(y, p_ens, n_bins),
                  "best_member": expected_calibration_error(y, p_best, n_bins)}
    out["member_test_auc"] = {m: roc_auc(y, test_logits[m]) for m in calib.members}
    return out
