"""The metric report on synthetic predictions with known structure."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dhs_gen.stats.metrics import roc_auc
from training.eval.report import ReportConfig, analyze_predictions, coarse_healpix, confuser_fpr, tier_recall


def _predictions(n=3000, seed=0, scale=3.0):
    rng = np.random.default_rng(seed)
    rows = []
    for split in ("val", "test"):
        z = rng.normal(0, 2.0, n)
        y = (rng.uniform(size=n) < 1 / (1 + np.exp(-z))).astype(int)
        frame = pd.DataFrame({
            "id": [f"{split}{i}" for i in range(n)], "split": split, "label": y, "logit": scale * z,
            "kind": np.where(y == 1, "pos", "ctrl"),
            "tier": np.where(y == 1, rng.choice(["A", "B"], n), rng.choice(["N1", "N2"], n)),
            "confuser_category": np.where((y == 0) & (rng.uniform(size=n) < 0.3),
                                          rng.choice(["ring_proxy", "edge_on_proxy"], n), None),
            "psfsize_r": rng.uniform(0.8, 2.0, n), "psfdepth_r_mag5": rng.uniform(22.5, 24.5, n),
            "nobs_z_bin": rng.choice(["1-2", "3-5", "6-10"], n),
            "healpix_128": rng.integers(0, 12 * 128**2, n),
        })
        rows.append(frame)
    hard = rows[1].iloc[:200].copy()
    hard["id"] = "hn" + hard["id"]
    hard["kind"], hard["label"], hard["logit"] = "hardneg", 0, -6.0
    return pd.concat(rows + [hard], ignore_index=True)


def test_report_end_to_end():
    pred = _predictions()
    cfg = ReportConfig(n_boot=60)
    rep = analyze_predictions(pred, cfg)
    assert rep["temperature"] == pytest.approx(3.0, rel=0.1)
    cal = rep["calibration"]["test"]
    assert cal["after"]["ece"] < cal["before"]["ece"] / 2
    test = pred[(pred.split == "test") & (pred.kind != "hardneg")]
    assert rep["metrics"]["test"]["roc_auc"] == pytest.approx(roc_auc(test.label, test.logit))
    assert rep["metrics"]["test"]["n"] == 3000  # hard negatives excluded from headline metrics
    ci = rep["intervals"]["test"]["roc_auc"]
    assert ci["iid"]["lo"] < rep["metrics"]["test"]["roc_auc"] < ci["iid"]["hi"]
    assert ci["region"]["method"] == "region"
    assert set(rep["tiers"]) == {"A", "B"} and "val_fpr_0.001" in rep["tiers"]["A"]
    assert {r["category"] for r in rep["confusers"]} == {"edge_on_proxy", "none", "ring_proxy"}
    assert set(rep["strata"]) == {"psfsize_r", "psfdepth_r_mag5", "nobs_z_bin"}
    assert rep["hard_negatives"]["n"] == 200 and rep["hard_negatives"]["mean_p"] < 0.2
    vt = rep["val_vs_test"]
    assert vt["difference"] == pytest.approx(vt["roc_auc_test"] - vt["roc_auc_val"])
    assert vt["lo"] < vt["difference"] < vt["hi"] and vt["bootstrap"] == "region"
    fpr_val = rep["metrics"]["test"]["at_val_thresholds"]["val_fpr_0.01"]["fpr"]
    assert fpr_val < 0.03  # threshold chosen on val transfers to test


def test_tier_and_confuser_counts_exact():
    test = pd.DataFrame({"label": [1, 1, 1, 0, 0, 0, 0], "p": [0.9, 0.4, 0.6, 0.7, 0.1, 0.2, 0.8],
                         "tier": ["A", "A", "B", "N2", "N1", "N2", "N2"],
                         "confuser_category": [None, None, None, "ring_proxy", None, "ring_proxy", "blue_clumpy"]})
    tiers = tier_recall(test, {"p": 0.5})
    assert tiers["A"]["p"]["k"] == 1 and tiers["A"]["p"]["n"] == 2 and tiers["B"]["p"]["rate"] == 1.0
    rows = {r["category"]: r for r in confuser_fpr(test, 0.5)}
    assert rows["ring_proxy"]["k"] == 1 and rows["ring_proxy"]["n"] == 2
    assert rows["blue_clumpy"]["fpr"] == 1.0 and rows["none"]["fpr"] == 0.0
    assert rows["ring_proxy"]["lo"] < 0.5 < rows["ring_proxy"]["hi"]


def test_regions_and_errors():
    pred = pd.DataFrame({"healpix_128": [0, 63, 64, 200000]})
    assert coarse_healpix(pred, 16).tolist() == [0, 0, 1, 200000 // 64]
    with pytest.raises(ValueError, match="divide"):
        coarse_healpix(pred, 48)
    bad = _predictions(200)
    bad = bad[bad.split == "test"]
    with pytest.raises(ValueError, match="split 'val'"):
        analyze_predictions(bad, ReportConfig(n_boot=0))
