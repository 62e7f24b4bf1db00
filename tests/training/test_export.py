"""Frozen-model export/load: round trip, provenance, content addressing, tamper detection."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from training.export import export_frozen_model, ids_hash, load_frozen_model
from training.models import build_model
from training.preprocess import Preprocess

PRE = {"crop": 16, "norm": "outer_mad", "six_channel": True, "meta_columns": ["psfsize_r"],
       "meta_mean": [1.2], "meta_std": [0.2]}


def _model():
    torch.manual_seed(0)
    return build_model("small_cnn", in_chans=6, meta_dim=1).eval()


def test_round_trip_predictions_and_provenance(tmp_path):
    model = _model()
    out = str(tmp_path / "frozen")
    mid = export_frozen_model(model, {"seed": 1}, out, data_manifest_hash="abc", preprocess=PRE,
                              trained_ids=["b", "a", "c"], trained_host_ids=["h1", "h2"])
    fm = load_frozen_model(out)
    assert fm.model_id == mid and len(mid) == 64
    assert fm.data_manifest_hash == "abc" and fm.config == {"seed": 1}
    assert fm.trained_ids_hash == ids_hash(["a", "b", "c"]) and fm.trained_ids() == {"a", "b", "c"}
    assert fm.code_version
    rng = np.random.default_rng(0)
    images = rng.normal(0, 0.01, (5, 3, 20, 20)).astype(np.float32)
    meta = np.full((5, 1), 1.3, np.float32)
    pre = Preprocess(PRE)
    with torch.no_grad():
        expected = model(pre(torch.from_numpy(images)), pre.meta(torch.from_numpy(meta))).numpy()
    fm.batch_size = 2  # exercise batching
    np.testing.assert_allclose(fm.predict_logits(images, meta), expected, rtol=1e-5, atol=1e-6)
    assert fm.features(images, meta).shape == (5, model.num_features)
    assert fm.predict_logits(images[:0], meta[:0]).shape == (0,)
    fm.assert_disjoint(["x", "y"])
    with pytest.raises(ValueError, match="used to train"):
        fm.assert_disjoint(["x", "b"])
    assert fm.trained_host_ids() == {"h1", "h2"}
    fm.assert_disjoint(["x"], host_ids=["h3"])
    with pytest.raises(ValueError, match="host ids were used"):
        fm.assert_disjoint(["x"], host_ids=["h3", "h2"])
    with pytest.raises(ValueError, match="float32"):
        fm.predict_logits(images.astype(np.float64), meta)


def test_model_id_is_content_addressed(tmp_path):
    model = _model()
    a = export_frozen_model(model, {"seed": 1}, str(tmp_path / "a"), data_manifest_hash="h", preprocess=PRE)
    b = export_frozen_model(model, {"seed": 1}, str(tmp_path / "b"), data_manifest_hash="h", preprocess=PRE)
    c = export_frozen_model(model, {"seed": 2}, str(tmp_path / "c"), data_manifest_hash="h", preprocess=PRE)
    with torch.no_grad():
        model.head.bias += 1
    d = export_frozen_model(model, {"seed": 1}, str(tmp_path / "d"), data_manifest_hash="h", preprocess=PRE)
    assert a == b and len({a, c, d}) == 3


def test_tampering_and_incomplete_are_refused(tmp_path):
    out = tmp_path / "frozen"
    export_frozen_model(_model(), {}, str(out), data_manifest_hash="h", preprocess=PRE, trained_ids=["a"])
    rec = json.loads((out / "model.json").read_text())
    rec["config"] = {"seed": 99}
    (out / "model.json").write_text(json.dumps(rec))
    with pytest.raises(ValueError, match="model_id"):
        load_frozen_model(str(out))
    (out / "_SUCCESS").unlink()
    with pytest.raises(FileNotFoundError, match="_SUCCESS"):
        load_frozen_model(str(out))


def test_s3_round_trip(s3_bucket):
    uri = f"{s3_bucket}/models/m1"
    mid = export_frozen_model(_model(), {}, uri, data_manifest_hash="h", preprocess=PRE, trained_ids=["a"])
    fm = load_frozen_model(uri)
    assert fm.model_id == mid and fm.trained_ids() == {"a"}
