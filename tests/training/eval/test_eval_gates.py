"""Shortcut gates: planted shortcuts fail, clean paired data passes, CV is out-of-fold.

"Physical" pairs convolve the synthetic arcs with the PSF (every real sky signal is at least
PSF-broad); the raw synthetic arcs are narrower than the PSF azimuthally."""
from __future__ import annotations

import json

import numpy as np
import pytest
from eval_synth import FWHM, make_pairs, pixel_excess_model, ring_filter_model

from dhs_gen import PIXEL_SCALE_ARCSEC
from training.eval.gates import (
    GateConfig,
    annulus_masks,
    cv_auc,
    gate_verdict,
    noise_features,
    quadratic_fit_kernel,
    radial_profile_features,
    run_paired_pixel_probes,
    run_pixel_probes,
    run_shortcut_gates,
)


def physical_pairs(arc_amp=0.4, seed=1):
    """(pos, ctrl, arc, theta_e, fwhm): make_pairs with its arcs convolved by the PSF (Gaussian)."""
    from scipy.ndimage import gaussian_filter

    pos, ctrl, _, theta, fwhm = make_pairs(arc_amp=arc_amp, seed=seed)
    sigma = FWHM / 2.3548 / PIXEL_SCALE_ARCSEC
    arc = gaussian_filter(pos - ctrl, sigma=(0, 0, sigma, sigma)).astype(np.float32)
    return ctrl + arc, ctrl, arc, theta, fwhm


@pytest.fixture(scope="module")
def physical():
    return physical_pairs()


def _stacked(pos, ctrl):
    n = len(pos)
    return np.concatenate([pos, ctrl]), np.r_[np.ones(n), np.zeros(n)], np.r_[np.arange(n), np.arange(n)]


@pytest.fixture(scope="module")
def clean_result(pairs):
    pos, ctrl, hn, theta, fwhm = pairs
    return run_shortcut_gates(pos, ctrl, theta, fwhm, hardneg_images=hn, score_fn=ring_filter_model())


def test_clean_data_and_arc_model_pass(clean_result):
    gates = clean_result["gates"]
    assert {k: g["status"] for k, g in gates.items()} == dict.fromkeys(("G1", "G2", "G3", "G4", "G5"), "pass")
    assert clean_result["overall"] == "pass" and clean_result["n_passed"] == 5
    assert gates["G1"]["value"] < 0.6 and gates["G3"]["value"] > 0.75
    assert {s["x_ratio_bin"] for s in gates["G1"]["by_stratum"]} == {"0.8-1", "1-100"}
    json.dumps(clean_result)  # JSON-able


def test_planted_core_shortcut_fails_g1():
    pos, ctrl, hn, theta, fwhm = make_pairs(core_shortcut=0.3, seed=3)
    res = run_shortcut_gates(pos, ctrl, theta, fwhm)
    # the arc footprint exclusion hides part of the planted core; G1 still fails
    assert res["gates"]["G1"]["status"] == "fail" and res["gates"]["G1"]["value"] > 0.6
    assert res["gates"]["G1"]["auc_with_arc_annulus"] > 0.9
    assert res["overall"] == "fail" and "G1" in res["critical_failures"]
    # without a model G4/G5 are skipped, never silently passed
    assert res["gates"]["G4"]["status"] == res["gates"]["G5"]["status"] == "skipped"


def test_morphology_blind_model_fails_hard_negatives(pairs):
    pos, ctrl, hn, theta, fwhm = pairs
    res = run_shortcut_gates(pos, ctrl, theta, fwhm, hardneg_images=hn, score_fn=pixel_excess_model())
    assert res["gates"]["G4"]["status"] == "fail" and res["gates"]["G4"]["value"] > 0.5
    assert res["overall"] == "fail"


def test_constant_output_model_fails_the_gates_overall(pairs):
    """G1-G3 never call the model, so a model that ignores the arcs must be caught by G4/G5:
    a constant low output passes G4 and the pixel probes, and fails overall through G5."""
    pos, ctrl, hn, theta, fwhm = pairs
    const = lambda im, idx: np.full(len(im), 0.01)  # noqa: E731
    res = run_shortcut_gates(pos, ctrl, theta, fwhm, hardneg_images=hn, score_fn=const)
    assert res["gates"]["G5"]["value"] == pytest.approx(0.0)
    assert res["gates"]["G5"]["status"] == "fail" and res["gates"]["G4"]["status"] == "pass"
    assert all(res["gates"][g]["status"] == "pass" for g in ("G1", "G2", "G3"))
    assert res["gates"]["G5"]["critical"] and res["critical_failures"] == ["G5"]
    assert res["overall"] == "fail" and res["n_passed"] == 4


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
    res = run_shortcut_gates(pos, ctrl, theta, fwhm, config=strict)
    assert res["gates"]["G3"]["status"] == "fail" and res["gates"]["G3"]["threshold"] == 0.99
    assert res["gates"]["G1"]["n_pairs"] == len(pos)  # x_min 0.5 keeps every pair


def test_cv_auc_is_out_of_fold():
    # 300 random features, random labels: an in-sample fit would separate them perfectly
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 300))
    y = rng.integers(0, 2, 200)
    assert abs(cv_auc(x, y)["auc"] - 0.5) < 0.12
    assert np.isnan(cv_auc(x[:6], [0, 1, 0, 0, 0, 0])["auc"])  # too few per class: NaN, not a guess


def test_pixel_probes(physical):
    pos, ctrl, _, _, _ = physical
    images, labels, groups = _stacked(pos, ctrl)
    ok = run_pixel_probes(images, labels, groups=groups)
    assert 0.9 <= ok["core_brightness_ratio"]["value"] <= 1.1
    assert ok["core_brightness_ratio"]["status"] == ok["noise_auc"]["status"] == "pass"
    bright = np.concatenate([pos * np.float32(1.3), ctrl])
    bad = run_pixel_probes(bright, labels, groups=groups)
    assert bad["core_brightness_ratio"]["status"] == "fail" and bad["overall"] == "fail"
    assert bad["core_only_auc"]["auc"] > 0.6


def test_paired_pixel_probes_pass_a_clean_physical_set(physical):
    pos, ctrl, _, theta, fwhm = physical
    res = run_paired_pixel_probes(pos, ctrl, theta, fwhm)
    assert res["overall"] == "pass", res
    assert res["n_pairs"] == int(np.sum(theta / fwhm >= 1.0)) < len(pos)
    assert res["core_only_auc"]["arc_annulus_excluded"] and res["noise_auc"]["regions"] == ["core", "arc_annulus"]
    json.dumps(res)
    few = run_paired_pixel_probes(pos[:20], ctrl[:20], np.full(20, 0.5), fwhm[:20])
    assert few["overall"] == "incomplete" and few["n_pairs"] == 0


def test_unresolved_arcs_fill_the_core_only_below_x_min(physical):
    # the x = 0.83 arcs (theta_E 1.0") sit inside the 10x10 core: physics, not a shortcut. Pooling
    # every pair (the earlier data gate) fails; positives vs own controls at x >= 1 pass.
    pos, ctrl, _, theta, fwhm = physical
    images, labels, groups = _stacked(pos, ctrl)
    pooled = run_pixel_probes(images, labels, groups=groups)
    assert pooled["core_only_auc"]["status"] == "fail"
    res = run_paired_pixel_probes(pos, ctrl, theta, fwhm)
    assert res["core_only_auc"]["status"] == "pass" and res["core_only_auc"]["auc"] < 0.56
    strata = {s["x_ratio_bin"]: s["value"] for s in res["core_brightness_ratio"]["by_stratum"]}
    assert strata["0.8-1"] > strata["1-100"]


def test_planted_arc_noise_shortcut_fails_the_noise_gate_only(physical):
    # shot noise added to the positives' arcs only (100 counts per flux unit, far below what the
    # hosts' own noise implies), as the demo's arc_poisson did: linear pixel probes are blind to
    # it, the noise probe is not
    pos, ctrl, arc, theta, fwhm = physical
    rng = np.random.default_rng(5)
    noisy = (pos + rng.standard_normal(pos.shape) * np.sqrt(np.clip(arc, 0, None) / 100.0)).astype(np.float32)
    res = run_paired_pixel_probes(noisy, ctrl, theta, fwhm)
    assert res["noise_auc"]["status"] == "fail" and res["noise_auc"]["auc"] > 0.75
    assert res["core_only_auc"]["status"] == res["core_brightness_ratio"]["status"] == "pass"
    assert res["overall"] == "fail"
    assert run_shortcut_gates(noisy, ctrl, theta, fwhm)["gates"]["G1"]["status"] == "pass"


def test_structure_sharper_than_the_psf_fails_the_noise_gate(pairs):
    pos, ctrl, _, theta, fwhm = pairs  # raw synthetic arcs: 0.08 rad wide, under the PSF
    assert run_paired_pixel_probes(pos, ctrl, theta, fwhm)["noise_auc"]["status"] == "fail"


def test_g1_excludes_the_arc_footprint_but_not_a_core_shortcut():
    # bright x >= 1 arcs whose PSF wings reach the 10x10 box corners (half-diagonal 7.1 px)
    pos, ctrl, _, theta, fwhm = physical_pairs(arc_amp=4.0)
    res = run_shortcut_gates(pos, ctrl, theta, fwhm)["gates"]["G1"]
    assert res["status"] == "pass" and res["auc_with_arc_annulus"] > 0.7
    full = run_shortcut_gates(pos, ctrl, theta, fwhm, config=GateConfig(exclude_arc_annulus=False))["gates"]["G1"]
    assert full["status"] == "fail" and full["value"] == pytest.approx(res["auc_with_arc_annulus"])
    _, ctrl2, _, theta2, fwhm2 = make_pairs(seed=3)
    shortcut = physical_pairs(seed=3)[0] + (make_pairs(core_shortcut=0.3, seed=3)[0] - make_pairs(seed=3)[0])
    assert run_shortcut_gates(shortcut, ctrl2, theta2, fwhm2)["gates"]["G1"]["status"] == "fail"


def test_noise_features_see_noise_not_smooth_structure():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:32, 0:32].astype(np.float32)
    smooth = (5.0 + 0.3 * xx + 0.02 * (xx - yy) ** 2)[None, None].repeat(2, axis=0).repeat(3, axis=1)
    noisy = smooth + rng.normal(0, 0.1, smooth.shape).astype(np.float32)
    f_smooth, f_noisy = noise_features(smooth), noise_features(noisy)
    assert f_smooth.shape == (2, 3) and np.all(f_smooth < -5)  # a quadratic is fitted exactly
    # robust sigma of (noise - local fit): 0.1 x sqrt(1 + sum w^2) with the fit weights w
    expect = 0.1 * np.sqrt((1 - quadratic_fit_kernel(5)[2, 2]) ** 2 + (quadratic_fit_kernel(5) ** 2).sum()
                           - quadratic_fit_kernel(5)[2, 2] ** 2)
    assert np.allclose(10 ** f_noisy, expect, rtol=0.2)
    with pytest.raises(ValueError, match="odd"):
        quadratic_fit_kernel(4)


def test_inputs_validated(pairs):
    pos, ctrl, _, theta, fwhm = pairs
    with pytest.raises(ValueError, match="float32"):
        run_shortcut_gates(pos.astype(np.float64), ctrl, theta, fwhm)
    bad = pos.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        run_shortcut_gates(bad, ctrl, theta, fwhm)
    with pytest.raises(ValueError, match="FWHM"):
        annulus_masks(pos.shape, theta, np.zeros_like(fwhm))
    assert radial_profile_features(pos[:2], 20).shape == (2, 3 * 20)
