"""dhs_gen.stats.metrics against scikit-learn on random data (ties, weights) and exact hand cases."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve

from dhs_gen.stats import metrics as M


def _random(seed, n=400, ties=True, weights=False):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    s = rng.normal(size=n) + 0.8 * y
    if ties:
        s = np.round(s, 1)  # many exact ties
    w = rng.uniform(0.1, 3.0, n) if weights else None
    return y, s, w


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("weights", [False, True])
def test_auc_and_ap_match_sklearn(seed, weights):
    y, s, w = _random(seed, weights=weights)
    assert M.roc_auc(y, s, sample_weight=w) == pytest.approx(skm.roc_auc_score(y, s, sample_weight=w), abs=1e-12)
    assert M.average_precision(y, s, sample_weight=w) == pytest.approx(
        skm.average_precision_score(y, s, sample_weight=w), abs=1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_roc_curve_points_match_sklearn(seed):
    y, s, w = _random(seed, weights=True)
    fpr, tpr, thr = M.roc_curve(y, s, sample_weight=w)
    f2, t2, th2 = skm.roc_curve(y, s, sample_weight=w, drop_intermediate=False)
    np.testing.assert_allclose(fpr, f2, atol=1e-12)
    np.testing.assert_allclose(tpr, t2, atol=1e-12)
    np.testing.assert_array_equal(thr[1:], th2[1:])


@pytest.mark.parametrize("seed", range(4))
def test_operating_point_metrics_match_sklearn_curves(seed):
    y, s, _ = _random(seed, n=2000)
    fpr, tpr, _ = skm.roc_curve(y, s, drop_intermediate=False)
    for target in (0.001, 0.01, 0.1):
        assert M.tpr_at_fpr(y, s, target) == pytest.approx(tpr[fpr <= target].max())
    prec, rec, _ = skm.precision_recall_curve(y, s)
    prec, rec = prec[:-1], rec[:-1]  # drop sklearn's artificial (1, 0) end point
    assert M.precision_at_recall(y, s, 0.9) == pytest.approx(prec[rec >= 0.9].max())
    ok = prec >= 0.6
    assert M.recall_at_precision(y, s, 0.6) == pytest.approx(rec[ok].max() if ok.any() else 0.0)


def test_hand_cases():
    # perfect separation, inversion, all tied
    assert M.roc_auc([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert M.roc_auc([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1]) == 0.0
    assert M.roc_auc([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]) == 0.5
    # pairs (pos, neg): (0.8,0.3)=1 (0.8,0.8)=.5 (0.4,0.3)=1 (0.4,0.8)=0 -> 2.5/4
    assert M.roc_auc([1, 1, 0, 0], [0.8, 0.4, 0.3, 0.8]) == 0.625
    # weights act as replication: doubling a sample == duplicating it
    assert M.roc_auc([1, 0, 0], [0.6, 0.5, 0.7], sample_weight=[1, 2, 1]) == pytest.approx(
        M.roc_auc([1, 0, 0, 0], [0.6, 0.5, 0.5, 0.7]))
    # AP: ranks  1(+) 2(-) 3(+) -> 0.5*1 + 0.5*2/3
    assert M.average_precision([1, 0, 1], [0.9, 0.8, 0.7]) == pytest.approx(0.5 + 1 / 3)
    y, s = [1, 1, 1, 0, 0, 0, 0], [0.9, 0.8, 0.3, 0.7, 0.2, 0.1, 0.05]
    assert M.tpr_at_fpr(y, s, 0.0) == pytest.approx(2 / 3)
    assert M.tpr_at_fpr(y, s, 0.2) == pytest.approx(2 / 3)
    assert M.threshold_at_fpr(y, s, 0.2) == 0.8
    assert M.tpr_at_fpr(y, s, 0.25) == 1.0
    assert M.threshold_at_fpr(y, s, 0.25) == 0.3
    assert M.recall_at_threshold(y, s, 0.5) == pytest.approx(2 / 3)
    assert M.fpr_at_threshold(y, s, 0.5) == pytest.approx(1 / 4)
    assert M.fpr_at_threshold(y, s, 0.7) == pytest.approx(1 / 4)  # >= threshold is positive
    assert M.precision_at_recall(y, s, 1.0) == pytest.approx(3 / 4)
    assert M.recall_at_precision(y, s, 1.0) == pytest.approx(2 / 3)
    assert M.recall_at_precision([0, 1], [0.9, 0.1], 0.9) == 0.0
    assert M.confusion_at_threshold(y, s, 0.5) == {"tp": 2.0, "fp": 1.0, "tn": 3.0, "fn": 1.0}


def test_calibration_hand_and_sklearn():
    y = np.array([0, 0, 1, 1, 1])
    p = np.array([0.1, 0.1, 0.9, 0.9, 0.6])
    # 2 bins: [0,.5): mean .1, frac 0 ; [.5,1]: mean .8, frac 1 -> (2*.1 + 3*.2)/5
    assert M.expected_calibration_error(y, p, n_bins=2) == pytest.approx(0.16)
    rc = M.reliability_curve(y, p, n_bins=2)
    np.testing.assert_allclose(rc.count, [2, 3])
    np.testing.assert_allclose(rc.frac_pos, [0, 1])
    assert M.expected_calibration_error([1, 0], [1.0, 0.0], n_bins=10) == 0.0
    assert M.reliability_curve([1], [1.0], n_bins=4).count[-1] == 1  # p == 1 in the last bin
    rng = np.random.default_rng(3)
    p = rng.uniform(size=3000)
    y = (rng.uniform(size=3000) < p**2).astype(int)
    rc = M.reliability_curve(y, p, n_bins=10)
    frac, mean = calibration_curve(y, p, n_bins=10)
    np.testing.assert_allclose(rc.frac_pos, frac, atol=1e-12)
    np.testing.assert_allclose(rc.mean_pred, mean, atol=1e-12)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        M.expected_calibration_error([0, 1], [0.2, 1.5])


def test_bad_input_raises_clearly():
    with pytest.raises(ValueError, match="both positive and negative"):
        M.roc_auc([1, 1], [0.1, 0.2])
    with pytest.raises(ValueError, match="non-finite"):
        M.roc_auc([0, 1], [0.1, np.nan])
    with pytest.raises(ValueError, match="0/1"):
        M.roc_auc([0, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match="length"):
        M.roc_auc([0, 1, 1], [0.1, 0.2])


def test_stratified_and_bins():
    labels = M.bin_labels([0.9, 1.1, 1.5, 2.5, np.nan], [1.0, 1.3, 2.0])
    assert labels.tolist() == ["out-of-range", "1-1.3", "1.3-2", "out-of-range", "out-of-range"]
    y = np.array([0, 1, 0, 1, 1, 1])
    s = np.array([0.1, 0.9, 0.8, 0.2, 0.5, 0.6])
    g = np.array(["a", "a", "b", "b", "c", "c"])
    rows = M.stratified_metrics(y, s, g, {"auc": M.roc_auc})
    assert [r["stratum"] for r in rows] == ["a", "b", "c"]
    assert rows[0]["auc"] == 1.0 and rows[1]["auc"] == 0.0
    assert np.isnan(rows[2]["auc"]) and rows[2]["n_pos"] == 2 and rows[2]["n_neg"] == 0


def test_binary_summary_keys():
    y, s, _ = _random(0)
    out = M.binary_summary(y, s, threshold=0.5)
    assert out["roc_auc"] == pytest.approx(skm.roc_auc_score(y, s))
    assert {"tpr_at_fpr_0.01", "tpr_at_fpr_0.001", "recall_at_threshold", "fpr_at_threshold"} <= set(out)
