"""Evaluation figures render to PNG (local paths) and reject bad inputs."""
from __future__ import annotations

import numpy as np
import pytest

from training.eval import figures as F


def _png(path):
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000
    return data


def test_curves_and_bars(tmp_path):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    s = rng.normal(size=500) + y
    p = 1 / (1 + np.exp(-s))
    _png(F.plot_roc({"test": (y, s), "anchors": (y[:100], s[:100])}, str(tmp_path / "roc.png")))
    _png(F.plot_reliability(y, {"before": p, "after": p ** 1.2}, str(tmp_path / "rel.png"), n_bins=10))
    rows = [{"category": "ring_proxy", "fpr": 0.01, "lo": 0.002, "hi": 0.05, "n": 300},
            {"category": "none", "fpr": 0.004, "lo": 0.001, "hi": 0.01, "n": 2000}]
    _png(F.plot_confuser_fpr(rows, str(tmp_path / "conf.png"), 0.5))
    _png(F.plot_strata([{"stratum": "1-1.2", "n": 40, "roc_auc": 0.9}, {"stratum": "1.2-1.4", "n": 30,
                                                                        "roc_auc": float("nan")}],
                       "roc_auc", str(tmp_path / "strata.png"), "AUC by PSF"))


def test_images_and_training_curves(tmp_path):
    rng = np.random.default_rng(1)
    images = rng.normal(0, 0.02, (3, 3, 33, 33)).astype(np.float32)
    _png(F.plot_gallery_images(list(images), ["a", "b", "c"], str(tmp_path / "gal.png"), ncols=2))
    six = F.six_channel_view(images)
    assert six.shape == (3, 6, 33, 33) and np.abs(six).max() <= 10.0
    _png(F.plot_six_channel(images[:2], ["a", "b"], str(tmp_path / "six.png")))
    csv = tmp_path / "metrics.csv"
    csv.write_text("epoch,train_loss,val_loss,val_auc,val_ece\n0,0.7,0.7,0.6,0.1\n1,0.4,0.45,0.9,0.05\n")
    _png(F.plot_training_curves(str(csv), str(tmp_path / "curves.png")))
    csv.write_text("step,loss\n0,1\n")
    with pytest.raises(ValueError, match="epoch"):
        F.plot_training_curves(str(csv), str(tmp_path / "bad.png"))
