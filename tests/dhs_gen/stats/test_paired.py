"""Paired variant statistics on planted differences: real differences are found, null ones are not
(at the nominal rate over repeats), and the building blocks agree with scikit-learn / scipy."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import roc_auc_score

from dhs_gen.stats.paired import (
    cut_at_fpr,
    holm_adjust,
    mcnemar_exact,
    paired_region_bootstrap,
    seed_spread,
    weighted_auc,
    weighted_cut_at_fpr,
)


def _sky(rng, n_pos, n_neg, n_regions=40):
    y = np.r_[np.ones(n_pos, bool), np.zeros(n_neg, bool)]
    regions = rng.integers(0, n_regions, y.size)
    return y, regions


def test_cut_leaves_at_most_the_budget_above_with_ties():
    neg = np.round(np.random.default_rng(0).normal(size=1000), 1)  # many ties
    for fpr in (0.1, 0.01, 0.001):
        cut = cut_at_fpr(neg, fpr)
        assert np.sum(neg > cut) <= fpr * neg.size
        lower = np.max(neg[neg < cut]) if np.any(neg < cut) else None
        if lower is not None:  # the next lower cut would exceed the budget: this cut is the lowest
            assert np.sum(neg > lower) > fpr * neg.size


def test_weighted_auc_matches_sklearn_with_weights_and_ties():
    rng = np.random.default_rng(1)
    pos, neg = np.round(rng.normal(1, 1, 300), 1), np.round(rng.normal(0, 1, 700), 1)
    wp, wn = rng.integers(0, 3, (2, 300)).astype(float), rng.integers(0, 3, (2, 700)).astype(float)
    got = weighted_auc(pos, neg, wp, wn)
    for b in range(2):
        ref = roc_auc_score(np.r_[np.ones(300), np.zeros(700)], np.r_[pos, neg], sample_weight=np.r_[wp[b], wn[b]])
        assert got[b] == pytest.approx(ref, abs=1e-12)


def test_weighted_cut_per_replicate_matches_the_unweighted_cut_on_expanded_rows():
    rng = np.random.default_rng(2)
    neg = rng.normal(size=200)
    w = rng.integers(0, 3, (5, 200)).astype(float)
    cuts = weighted_cut_at_fpr(neg, w, 0.05)
    for b in range(5):
        assert cuts[b] == cut_at_fpr(np.repeat(neg, w[b].astype(int)), 0.05)


def test_a_planted_tpr_difference_is_found_and_covered():
    rng = np.random.default_rng(3)
    y, regions = _sky(rng, 2000, 4000)
    noise = rng.normal(size=y.size)
    scores = {"base": np.where(y, 1.5, 0.0) + noise, "better": np.where(y, 2.3, 0.0) + noise}
    fpr = 1e-2
    true_delta = norm.sf(norm.isf(fpr) - 2.3) - norm.sf(norm.isf(fpr) - 1.5)
    rows = {(d.metric, d.variant): d for d in paired_region_bootstrap(y, scores, regions, "base", fprs=(fpr,),
                                                                       n_boot=300, seed=0)}
    d = rows[("tpr@0.01", "better")]
    assert d.lo > 0 and d.p_value < 0.01
    assert d.lo <= true_delta <= d.hi
    assert rows[("auc", "better")].lo > 0


def test_two_copies_of_one_model_are_told_apart_at_about_the_nominal_rate():
    """Null: two scorers from one distribution (same signal, independent noise of the same size)."""
    rng = np.random.default_rng(4)
    repeats, rejections = 120, {"tpr@0.01": 0, "auc": 0}
    for r in range(repeats):
        y, regions = _sky(rng, 400, 1200, n_regions=30)
        signal = np.where(y, 1.5, 0.0) + rng.normal(size=y.size)
        scores = {"a": signal + 0.7 * rng.normal(size=y.size), "b": signal + 0.7 * rng.normal(size=y.size)}
        for d in paired_region_bootstrap(y, scores, regions, "a", fprs=(1e-2,), n_boot=200, seed=r):
            rejections[d.metric] += d.p_value < 0.05
    for metric, k in rejections.items():
        assert k / repeats <= 0.11, f"{metric}: false-positive rate {k / repeats:.3f} at nominal 0.05"


def test_identical_models_never_differ():
    rng = np.random.default_rng(5)
    y, regions = _sky(rng, 200, 600)
    s = rng.normal(size=y.size) + y
    for d in paired_region_bootstrap(y, {"a": s, "b": s.copy()}, regions, "a", n_boot=50):
        assert d.estimate == 0 and d.p_value == 1.0


def test_mcnemar_exact():
    a = np.r_[np.ones(30, bool), np.zeros(70, bool)]
    b = np.r_[np.ones(10, bool), np.zeros(90, bool)]
    out = mcnemar_exact(a, b)
    assert (out["a_only"], out["b_only"]) == (20, 0) and out["p_value"] < 1e-5
    assert mcnemar_exact(a, a)["p_value"] == 1.0


def test_holm_matches_the_textbook_example():
    out = holm_adjust([0.01, 0.04, 0.03, 0.5])
    assert out["adjusted"] == pytest.approx([0.04, 0.09, 0.09, 0.5])
    assert out["reject"] == [True, False, False, False]


def test_bad_inputs_are_refused():
    y = np.array([1, 0, 1, 0])
    with pytest.raises(ValueError, match="baseline"):
        paired_region_bootstrap(y, {"a": np.zeros(4)}, [0, 1, 0, 1], "zz")
    with pytest.raises(ValueError, match="non-finite"):
        paired_region_bootstrap(y, {"a": np.array([0, np.nan, 1, 2.0])}, [0, 1, 0, 1], "a")


def test_seed_groups_average_metrics_and_report_spread():
    rng = np.random.default_rng(6)
    y, regions = _sky(rng, 500, 1500)
    base = np.stack([np.where(y, 1.0, 0.0) + rng.normal(size=y.size) for _ in range(3)])
    better = np.stack([np.where(y, 2.0, 0.0) + rng.normal(size=y.size) for _ in range(3)])
    (d_auc, d_tpr) = paired_region_bootstrap(y, {"base": base, "better": better}, regions, "base",
                                             fprs=(1e-2,), n_boot=200)
    spread_b, spread_v = seed_spread(y, base, (1e-2,)), seed_spread(y, better, (1e-2,))
    assert d_auc.estimate == pytest.approx(spread_v["auc"]["mean"] - spread_b["auc"]["mean"])
    assert d_tpr.lo > 0 and len(spread_v["tpr@0.01"]["per_seed"]) == 3 and spread_v["auc"]["std"] > 0
