"""The report's headline cards: cuts fixed on validation, rates the negatives cannot resolve shown as
"< 1/n", one named FPR definition per card, gates that say what passing means, purity at a prevalence."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from dhs.report.headlines import gates_card, operating_point_card, pct, purity_table
from dhs_gen.storage import write_json
from training.eval.report import ReportConfig, analyze_predictions


def _predictions(n_pos=246, n_neg=246, seed=3):
    """Paired-style predictions: val and test, one control per positive, 3 coarse sky regions."""
    rng = np.random.default_rng(seed)
    frames = []
    for split in ("val", "test"):
        y = np.r_[np.ones(n_pos, int), np.zeros(n_neg, int)]
        logit = np.where(y == 1, rng.normal(1.2, 1.5, y.size), rng.normal(-1.2, 1.5, y.size))
        frames.append(pd.DataFrame({"id": [f"{split}{i}" for i in range(y.size)], "split": split, "label": y,
                                    "logit": logit, "kind": np.where(y == 1, "pos", "ctrl"),
                                    "healpix_128": rng.choice([5, 70000, 150000], y.size)}))
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def evaluation():
    pred = _predictions()
    report = analyze_predictions(pred, ReportConfig(n_boot=50, fprs=[0.01, 0.001]))
    return {"model_id": "m" * 64, "config": {"report": {"val_split": "val", "test_split": "test"}},
            "report": report, "gates": {}, "config_sha256": "c" * 64}


def test_operating_points_use_validation_cuts_and_know_their_resolution(evaluation):
    rep = evaluation["report"]
    ops = {o["target_fpr"]: o for o in rep["operating_points"]}
    assert ops[0.01]["resolved"] and not ops[0.001]["resolved"]  # 0.1% of 246 negatives is < 1
    assert ops[0.001]["min_resolvable_fpr"] == pytest.approx(1 / 246) and ops[0.001]["val_negatives_above"] == 0
    assert ops[0.01]["negatives"] == "paired same-host controls"
    assert ops[0.01]["cut_p"] == pytest.approx(rep["thresholds"]["val_fpr_0.01"])
    # the cut is not refitted on test: the test TPR at the validation cut differs from the test-fitted one
    assert ops[0.01]["test_tpr"]["rate"] != pytest.approx(rep["metrics"]["test"]["tpr_at_fpr_0.01"])
    # 3 sky regions: no region bootstrap interval, the reason recorded
    ci = rep["intervals"]["test"]["roc_auc"]
    assert "region" not in ci and ci["region_skipped"]["n_regions"] == 3


def test_report_cards_come_from_validation_cuts(tmp_path, evaluation):
    """Fails on the old report, which showed TPR at cuts fitted on the test set itself."""
    from dhs.stages.report import run_demo_stage

    uri = str(tmp_path / "evaluation" / "eval" / "evaluation.json")
    write_json(uri, evaluation)
    write_json(str(tmp_path / "evaluation" / "summary.json"), {"status": "ok", "evaluation": uri, "ece_after": 0.02,
                                                              "temperature": 1.1})
    out = run_demo_stage(str(tmp_path / "report"))
    heads = out["headlines"]
    rep = evaluation["report"]
    ops = {o["target_fpr"]: o for o in rep["operating_points"]}
    assert heads["tpr_at_fpr_0.01"] == ops[0.01]["test_tpr"]["rate"]
    assert heads["tpr_at_fpr_0.001"] is None  # unresolved: never a number
    html = (tmp_path / "report" / "index.html").read_text()
    val_cut, test_fit = pct(ops[0.01]["test_tpr"]["rate"]), pct(rep["metrics"]["test"]["tpr_at_fpr_0.01"])
    assert val_cut != test_fit
    assert f"<div class='v'>{val_cut} [" in html and f">{test_fit}<" not in html
    assert "FPR &lt; 1/246: unresolved" in html and pct(rep["metrics"]["test"]["tpr_at_fpr_0.001"]) + "<" not in html
    assert "TPR @ FPR 1% (paired same-host controls)" in html
    assert "region bootstrap not shown: only 3 HEALPix regions" in html
    assert "calibrated at prevalence 0.50" in html and "From p to purity" in html
    assert "config sha256" in html and "code " in html


def test_unresolved_card_says_less_than_one_over_n():
    op = {"target_fpr": 0.001, "cut_p": 0.97, "fitted_on": "val", "negatives": "paired same-host controls",
          "n_val_negatives": 246, "val_negatives_above": 0, "resolved": False, "min_resolvable_fpr": 1 / 246,
          "test_tpr": {"k": 6, "n": 246, "rate": 6 / 246, "lo": 0.011, "hi": 0.052},
          "test_fpr": {"k": 0, "n": 246, "rate": 0.0, "lo": 0.0, "hi": 0.0154}, "test_fpr_resolved": False}
    card = operating_point_card(op)
    assert card.value == "FPR < 1/246: unresolved" and "0/246 (< 1/246)" in card.meaning
    assert "2.44%" not in card.value


def test_constant_model_gates_card_fails_and_says_what_passing_means():
    from tests.training.eval.eval_synth import make_pairs
    from training.eval.gates import run_shortcut_gates

    pos, ctrl, hn, theta, fwhm = make_pairs(n=100)
    res = run_shortcut_gates(pos, ctrl, theta, fwhm, hardneg_images=hn, score_fn=lambda im, idx: np.full(len(im), 0.01))
    card = gates_card(json.loads(json.dumps(res)))
    assert card.verdict == "fail" and card.value.startswith("fail")
    assert "G1–G3 probe the data, not the model" in card.meaning and "Failed: G5" in card.meaning
    assert "G1, G2, G4, G5" in card.meaning


def test_purity_table_numbers():
    op = {"target_fpr": 0.01, "cut_p": 0.8, "resolved": True,
          "test_tpr": {"k": 50, "n": 100, "rate": 0.5, "lo": 0.4, "hi": 0.6},
          "test_fpr": {"k": 1, "n": 100, "rate": 0.01, "lo": 0.002, "hi": 0.05}}
    rows = purity_table([op], prevalences=(1e-3,))
    expect = 0.5e-3 / (0.5e-3 + 0.01 * (1 - 1e-3))
    worst = 0.4e-3 / (0.4e-3 + 0.05 * (1 - 1e-3))
    assert rows[1][3] == f"{pct(expect)} (≥ {pct(worst)})"
    op["test_fpr"] = {"k": 0, "n": 100, "rate": 0.0, "lo": 0.0, "hi": 0.037}
    assert purity_table([op], prevalences=(1e-3,))[1][3].startswith("— (≥ ")


def test_completeness_card_quotes_the_interval_with_the_cuts_uncertainty():
    from dhs.report.headlines import completeness_card

    at = {"1": {"completeness": 0.40, "ci_lo": 0.35, "ci_hi": 0.45, "interval_lo": 0.22, "interval_hi": 0.61, "n": 400},
          "2": {"completeness": 0.70, "ci_lo": 0.64, "ci_hi": 0.75, "n": 300}}  # a summary without interval_*
    card = completeness_card(at, 0.01, {"n_negatives": 1200, "n_above": 11, "resolved": True}, [1.0, 2.0])
    assert "1″ [22%–61%], n = 400" in card.meaning  # the quoted interval, not Wilson's 35–45%
    assert "35%" not in card.meaning and "with the cut's uncertainty" in card.meaning
    assert "2″ [64%–75% Wilson only, given the cut], n = 300" in card.meaning
    assert not card.meaning.startswith("Wilson") and "; Wilson 95%:" not in card.meaning
