"""Temperature scaling and ensembles on synthetic models with known answers."""
from __future__ import annotations

import numpy as np
import pytest

from dhs_gen.stats.metrics import expected_calibration_error, roc_auc
from training.eval.calibration import (
    binary_nll,
    calibrated_proba,
    calibration_report,
    fit_temperature,
    sigmoid,
)
from training.eval.ensembles import combine_logits, compare_ensemble, ensemble_proba, fit_ensemble


def _calibrated_truth(n, seed):
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 2.0, n)  # true log-odds
    y = (rng.uniform(size=n) < sigmoid(z)).astype(int)
    return z, y


@pytest.mark.parametrize("scale", [3.0, 0.5])
def test_temperature_recovers_miscalibration_and_reduces_ece(scale):
    z_val, y_val = _calibrated_truth(20000, 0)
    z_test, y_test = _calibrated_truth(20000, 1)
    t = fit_temperature(scale * z_val, y_val)
    assert t == pytest.approx(scale, rel=0.06)
    before = expected_calibration_error(y_test, sigmoid(scale * z_test))
    after = expected_calibration_error(y_test, calibrated_proba(scale * z_test, t))
    assert before > 0.04 and after < 0.015 and after < before / 3
    rep = calibration_report(y_test, scale * z_test, t)
    assert rep["after"]["ece"] == pytest.approx(after) and rep["before"]["ece"] == pytest.approx(before)
    assert rep["after"]["nll"] < rep["before"]["nll"]
    assert sum(rep["after"]["reliability"]["count"]) == 20000


def test_temperature_keeps_ranking_and_nll_is_stable():
    z, y = _calibrated_truth(500, 2)
    assert roc_auc(y, calibrated_proba(4 * z, 4.0)) == pytest.approx(roc_auc(y, z))
    assert binary_nll([1000.0, -1000.0], [1, 0]) == pytest.approx(0.0)
    assert np.isfinite(binary_nll([1000.0], [0]))
    with pytest.raises(ValueError, match="both classes"):
        fit_temperature([0.1, 0.2], [1, 1])
    with pytest.raises(ValueError, match="temperature"):
        calibrated_proba([0.0], 0.0)


def test_combine_logits_known_values():
    logits = {"a": np.array([2.0, -2.0]), "b": np.array([4.0, 0.0])}
    np.testing.assert_allclose(combine_logits(logits, {"a": 1.0, "b": 2.0}), [2.0, -1.0])
    with pytest.raises(ValueError, match="members"):
        combine_logits({"a": np.zeros(2)}, {"a": 1.0, "b": 1.0})


def test_ensemble_beats_best_member_with_ci():
    rng = np.random.default_rng(5)

    def members(z):
        noise = rng.normal(0, 2.0, (3, z.size))
        scales = (2.0, 0.7, 1.5)  # each member miscalibrated differently
        return {f"m{i}": scales[i] * (z + noise[i]) for i in range(3)}

    z_val, y_val = _calibrated_truth(6000, 3)
    z_test, y_test = _calibrated_truth(6000, 4)
    val, test = members(z_val), members(z_test)
    calib = fit_ensemble(val, y_val)
    assert calib.member_temperatures["m0"] > calib.member_temperatures["m1"]
    assert calib.best_member == max(calib.val_auc, key=calib.val_auc.get)
    p = ensemble_proba(test, calib)
    assert expected_calibration_error(y_test, p) < 0.02
    out = compare_ensemble(test, y_test, calib, n_boot=200, seed=0)
    diff = out["roc_auc"]["difference"]
    assert diff["estimate"] > 0 and diff["lo"] > 0
    assert out["roc_auc"]["a"]["estimate"] == pytest.approx(roc_auc(y_test, p))
    regions = np.arange(6000) % 50
    reg = compare_ensemble(test, y_test, calib, n_boot=100, seed=0, regions=regions)
    assert reg["roc_auc"]["difference"]["method"] == "region"
