"""Anchor evaluation: lenscat selection, mock cutouts, recall with Wilson CIs, metadata baseline."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.eval.anchors import (
    AnchorConfig,
    masked_fraction,
    metadata_baseline,
    run_anchor_eval,
    select_anchors,
)


def test_selection_is_deterministic_and_filtered():
    cfg = AnchorConfig(max_anchors=15)
    a, b = select_anchors(cfg), select_anchors(cfg)
    assert a["name"].tolist() == b["name"].tolist() and len(a) == 15
    assert (a["grading"] == "confident").all() and a["survey"].str.contains("DESI").all()
    with pytest.raises(ValueError, match="no lenscat rows"):
        select_anchors(AnchorConfig(survey="NOSUCHSURVEY"))


def test_masked_fraction():
    img = np.ones((2, 3, 4, 4), np.float32)
    img[0, 1, 0, :] = np.nan
    img[1, :, :2, :] = 0.0
    assert masked_fraction(img).tolist() == [0.25, 0.5]


def test_metadata_baseline_detects_metadata_leak():
    rng = np.random.default_rng(0)
    n = 120
    neg = pd.DataFrame({"psfsize_r": rng.normal(1.3, 0.1, 400), "psfdepth_r_mag5": rng.normal(23.5, 0.3, 400),
                        "mask_frac": np.zeros(400)})
    same = pd.DataFrame({"psfsize_r": rng.normal(1.3, 0.1, n), "psfdepth_r_mag5": rng.normal(23.5, 0.3, n),
                         "mask_frac": np.zeros(n)})
    leak = same.assign(psfsize_r=same["psfsize_r"] + 0.4)  # anchors observed in worse seeing
    fair = metadata_baseline(same, neg, [0.5, 0.3])
    biased = metadata_baseline(leak, neg, [0.5, 0.3])
    assert abs(fair["auc"] - 0.5) < 0.1 and biased["auc"] > 0.95
    assert biased["recall"]["p>0.5"]["recall"] > 0.9


def test_run_anchor_eval_with_mock_provider():
    cfg = AnchorConfig(enabled=True, max_anchors=12)
    seen = {}

    def proba(images, rows):
        seen["shape"] = images.shape
        return np.linspace(0.1, 0.9, len(images))

    neg_meta = pd.DataFrame({"psfsize_r": np.full(30, 1.3), "psfdepth_r_mag5": np.full(30, 23.5),
                             "mask_frac": np.zeros(30)})
    out = run_anchor_eval(proba, cfg, 32, np.full(30, 0.05), neg_meta)
    assert seen["shape"] == (12, 3, 32, 32)  # even size: fetched at 33 and cropped
    assert out["recall"]["p>0.5"]["n"] == 12 and out["recall"]["p>0.5"]["k"] == 6
    assert out["recall"]["p>0.3"]["k"] == 9
    assert out["image_model_auc_vs_negatives"] == 1.0
    assert out["metadata_baseline"]["status"] == "ok"
