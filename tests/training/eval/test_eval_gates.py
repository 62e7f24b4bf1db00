"""Shortcut gates: planted shortcuts fail, clean paired data passes, CV is out-of-fold."""
from __future__ import annotations

import json

import numpy as np
import pytest
from eval_synth import make_pairs, pixel_excess_model, ring_filter_model

from training.eval.gates import (
    GateConfig,
    annulus_masks,
    cv_auc,
    gate_verdict,
    radial_profile_features,
    run_data_gates,
    run_gates_quick,
)


@pytest.fixture(scope="module")
def clean_result(pairs):
    pos, ctrl, hn, theta, fwhm = pairs
    return run_gates_quick(pos, ctrl, theta, fwhm, hardneg_images=hn, score_fn=ring_filter_model())


def test_clean_data_and_arc_model_pass(clean_result):
    gates = clean_result["gates"]
    assert {k: g["status"] for k, g in gates.items()} == dict.fromkeys(("G1", "G2", "G3", "G4", "G5"), "pass")
    assert clean_result["overall"] == "pass" and clean_result["n_passed"] == 5
    assert gates["G1"]["value"] < 0.6 and gates["G3"]["value"] > 0.75
    assert {s["x_ratio_bin"] for s in gates["G1"]["by_stratum"]} == {"0.8-1", "1-100"}
    json.dumps(clean_result)  # JSON-able


def test_planted_core_shortcut_fails_g1():
    pos, ctrl, hn, theta, fwhm = make_pairs(core_shortcut=0.3, seed=3)
    res = run_gates_quick(pos, ctrl, theta, fwhm)
    assert res["gates"]["G1"]["status"] == "fail" and res["gates"]["G1"]["value"] > 0.9
    assert res["overall"] == "fail" and "G1" in res["critical_failures"]
    # without a model G4/G5 are skipped, never silently passed
    assert res["gates"]["G4"]["status"] == res["gates"]["G5"]["status"] == "skipped"


def test_morphology_blind_model_fails_hard_negatives(pairs):
    pos, ctrl, hn, theta, fwhm = pairs
    res = run_gates_quick(pos, ctrl, theta, fwhm, hardneg_images=hn, score_fn=pixel_excess_model())
    assert res["gates"]["G4"]["status"] == "fail" and res["gates"]["G4"]["value"] > 0.5
    assert res["overall"] == "fail"


def test_occlusion_drop_fails_for_model_ignoring_the_arc(pairs):
    pos, ctrl, hn, theta, fwhm = pairs
    const = lambda im, idx: np.full(len(im), 0.01)  # noqa: E731
    res = run_gates_quick(pos, ctrl, theta, fwhm, hardneg_images=hn, score_fn=const)
    assert res["gates"]["G5"]["value"] == pytest.approx(0.0)
    assert res["gates"]["G5"]["status"] == "fail" and res["gates"]["G4"]["status"] == "pass"
    # only an important gate fails: 4/5 with every critical gate passing is still "pass"
    assert res["overall"] == "pass" and res["n_passed"] == 4


def test_verdict_rule():
    def g(*statuses):
        crit = {"G1": True, "G2": True, "G3": False, "G4": True, "G5": False}
        return {k: {"status": s, "critical": crit[k]} for k, s in zip(crit, statuses)}
    assert gate_verdict(g("pass", "pass", "pass", "pass", "pass"))["overall"] == "pass"
    assert gate_verdict(g("pass", "pass", "fail", "pass", "pass"))["overall"] == "pass"
    assert gate_verdict(g("pass", "pass", "fail", "pass", "fail"))["overall"] == "marginal"
    assert gate_verdict(g("fail", "pass", "pass", "pass", "pass"))["overall"] == "fail"
    assert gate_verdict(g("pass", "pass", "pass", "skipped", "skipped"))["overall"] == "incomplete"
    assert gate_verdict(g("pass", "fail", "pass", "skipped", "skipped"))["overall"] == "fail"


def test_thresholds_come_from_config(pairs):
    pos, ctrl, _, theta, fwhm = pairs
    strict = GateConfig(g3={"op": ">=", "value": 0.99, "critical": False}, x_min=0.5)
    res = run_gates_quick(pos, ctrl, theta, fwhm, config=strict)
    assert res["gates"]["G3"]["status"] == "fail" and res["gates"]["G3"]["threshold"] == 0.99
    assert res["gates"]["G1"]["n_pairs"] == len(pos)  # x_min 0.5 keeps every pair


def test_cv_auc_is_out_of_fold():
    # 300 random features, random labels: an in-sample fit would separate them perfectly
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 300))
    y = rng.integers(0, 2, 200)
    assert abs(cv_auc(x, y)["auc"] - 0.5) < 0.12
    assert np.isnan(cv_auc(x[:6], [0, 1, 0, 0, 0, 0])["auc"])  # too few per class: NaN, not a guess


def test_data_gates(pairs):
    pos, ctrl, _, _, _ = pairs
    images = np.concatenate([pos, ctrl])
    labels = np.r_[np.ones(len(pos)), np.zeros(len(ctrl))]
    groups = np.r_[np.arange(len(pos)), np.arange(len(pos))]
    ok = run_data_gates(images, labels, groups=groups)
    assert ok["overall"] == "pass"
    assert 0.9 <= ok["core_brightness_ratio"]["value"] <= 1.1
    bright = np.concatenate([pos * np.float32(1.3), ctrl])
    bad = run_data_gates(bright, labels, groups=groups)
    assert bad["core_brightness_ratio"]["status"] == "fail" and bad["overall"] == "fail"
    assert bad["core_only_auc"]["auc"] > 0.6


def test_inputs_validated(pairs):
    pos, ctrl, _, theta, fwhm = pairs
    with pytest.raises(ValueError, match="float32"):
        run_gates_quick(pos.astype(np.float64), ctrl, theta, fwhm)
    bad = pos.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        run_gates_quick(bad, ctrl, theta, fwhm)
    with pytest.raises(ValueError, match="FWHM"):
        annulus_masks(pos.shape, theta, np.zeros_like(fwhm))
    assert radial_profile_features(pos[:2], 20).shape == (2, 3 * 20)
