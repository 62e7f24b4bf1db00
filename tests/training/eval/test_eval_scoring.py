"""Batch scoring with real frozen models: statuses, calibration, ensembles, top-K, gallery."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from dhs_gen.io.stamps import encode_stamp, encode_stamp_npz
from dhs_gen.schemas import validate_table
from training.eval.calibration import sigmoid
from training.eval.scoring import decode_stamps, load_scorer, top_k


def _export(tmp_path, name, seed):
    import torch

    from training.export import export_frozen_model
    from training.models import build_model

    torch.manual_seed(seed)
    model = build_model("small_cnn", in_chans=3)
    path = str(tmp_path / name)
    export_frozen_model(model, {"seed": seed}, path, data_manifest_hash="test", preprocess={"norm": "outer_mad"},
                        trained_ids=["train-1"])
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("frozen")
    return _export(tmp, "m1", 1), _export(tmp, "m2", 2)


def _table(n=7, size=32):
    rng = np.random.default_rng(0)
    images = rng.normal(0, 0.05, (n, 3, size, size)).astype(np.float32)
    blobs = [encode_stamp(im) for im in images]
    blobs[1] = encode_stamp_npz(images[1])  # legacy layout still scores
    blobs[2] = None
    nan_img = images[3].copy()
    nan_img[0, 0, 0] = np.nan
    blobs[3] = encode_stamp(nan_img)
    blobs[4] = b"garbage"
    blobs[5] = encode_stamp(images[5][:, :16, :16])
    status = ["ok"] * n
    status[6] = "cutout_failed"
    table = pa.table({"galaxy_id": [f"g{i}" for i in range(n)], "stamp": pa.array(blobs, pa.binary()),
                      "status": status, "label": np.arange(n) % 2})
    return table, images


def test_decode_statuses():
    table, _ = _table()
    images, ok, statuses = decode_stamps(table.column("stamp").to_pylist())
    assert statuses == ["ok", "ok", "missing_stamp", "nonfinite_pixels", "decode_error", "shape_mismatch", "ok"]
    assert images.shape == (3, 3, 32, 32) and ok.sum() == 3


def test_single_model_scores_match_frozen_model(models):
    from training.export import load_frozen_model

    table, images = _table()
    scorer = load_scorer([models[0]], temperature=2.0)
    out = scorer.score_table(table, id_column="galaxy_id", keep_columns=["label"], batch_size=3)
    validate_table(out, "scores")
    assert out.column("status").to_pylist() == ["ok", "ok", "missing_stamp", "nonfinite_pixels", "decode_error",
                                                 "shape_mismatch", "input_not_ok"]
    ref = load_frozen_model(models[0]).predict_logits(images[:2])
    logit = out.column("logit").to_numpy()
    np.testing.assert_allclose(logit[:2], ref, rtol=1e-5, atol=1e-6)
    assert np.all(np.isnan(logit[2:]))
    np.testing.assert_allclose(out.column("model_score").to_numpy()[:2], sigmoid(ref / 2.0), rtol=1e-5)
    assert set(out.column("model_id").to_pylist()) == {scorer.model_id}
    assert out.column("label").to_pylist() == table.column("label").to_pylist()


def test_ensemble_and_calibration_checks(models):
    from training.export import load_frozen_model

    ids = [load_frozen_model(p).model_id for p in models]
    calib = {"kind": "ensemble", "member_temperatures": {ids[0]: 2.0, ids[1]: 0.5}, "ensemble_temperature": 1.5}
    scorer = load_scorer(list(models), calibration=calib)
    table, images = _table()
    out = scorer.score_table(table, id_column="galaxy_id")
    l1, l2 = (load_frozen_model(p).predict_logits(images[:2]) for p in models)
    expect = (l1 / 2.0 + l2 / 0.5) / 2
    np.testing.assert_allclose(out.column("logit").to_numpy()[:2], expect, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out.column("model_score").to_numpy()[:2], sigmoid(expect / 1.5), rtol=1e-5)
    assert scorer.model_id.startswith("ensemble-")
    with pytest.raises(ValueError, match="calibration is for model"):
        load_scorer([models[0]], calibration={"kind": "single", "model_id": ids[1], "temperature": 1.0})
    with pytest.raises(ValueError, match="exactly one"):
        load_scorer([models[0]])
    with pytest.raises(ValueError, match="lacks columns"):
        scorer.score_table(table, id_column="nope")


def test_top_k_is_deterministic():
    scores = pa.table({"id": ["a", "b", "c", "d"], "logit": [1.0, 2.0, 2.0, float("nan")],
                       "model_score": pa.array([0.7, 0.9, 0.9, float("nan")], pa.float32()),
                       "model_id": ["m"] * 4, "status": ["ok", "ok", "ok", "decode_error"]})
    assert top_k(scores, 3).column("id").to_pylist() == ["b", "c", "a"]
    assert top_k(scores, 1).column("id").to_pylist() == ["b"]


def test_rows_the_model_was_trained_on_are_excluded(models):
    table, _ = _table()
    table = table.set_column(0, "galaxy_id", pa.array(["train-1"] + [f"g{i}" for i in range(1, 7)]))
    scorer = load_scorer([models[0]], temperature=1.0)
    out = scorer.score_table(table, id_column="galaxy_id", exclude_trained=True)
    assert out.column("status").to_pylist()[:2] == ["in_training_set", "ok"]
    assert np.isnan(out.column("model_score").to_numpy()[0])
    assert scorer.score_table(table, id_column="galaxy_id").column("status").to_pylist()[0] == "ok"


# ----------------------------------------------------------------- issue 20 (items 3 and 4)

def _odd_first_blobs(n=256, size=24):
    import numpy as np

    from dhs_gen.io.stamps import encode_stamp

    rng = np.random.default_rng(1)
    blobs = [encode_stamp(rng.normal(0, 0.05, (3, size, size)).astype(np.float32)) for _ in range(n)]
    blobs[0] = encode_stamp(np.ones((3, 8, 8), np.float32))  # one odd stamp first
    return blobs


def test_one_odd_stamp_first_does_not_mark_the_good_ones():
    from training.eval.scoring import decode_stamps

    blobs = _odd_first_blobs()
    for kwargs in ({}, {"size": 24}, {"size": [24] * 256}, {"shape": (3, 24, 24)}):
        images, ok, statuses = decode_stamps(blobs, **kwargs)
        assert statuses[0] == "shape_mismatch" and statuses[1:] == ["ok"] * 255, kwargs
        assert images.shape == (255, 3, 24, 24)


def test_truncated_tiny_and_bomb_blobs_are_row_statuses():
    import gzip

    from training.eval.scoring import decode_stamps

    blobs = _odd_first_blobs(4)[1:]
    blobs += [blobs[0][:-7], blobs[0][:10], b"\x1f\x8b" + b"\x00" * 8, gzip.compress(b"\x00" * (80 * 2**20))]
    _, ok, statuses = decode_stamps(blobs, size=24)
    assert statuses == ["ok"] * 3 + ["decode_error"] * 4


def test_stamps_of_another_size_than_the_recorded_model_input_are_refused(tmp_path):
    """A model exported with its input shape (32 px) must not score 48-px stamps, even when they
    are the first and most numerous rows of the table (they used to set the expected size)."""
    import torch

    from training.export import export_frozen_model
    from training.models import build_model

    torch.manual_seed(0)
    path = str(tmp_path / "m32")
    export_frozen_model(build_model("small_cnn", in_chans=3), {}, path, data_manifest_hash="t",
                        preprocess={"norm": "outer_mad"}, input_shape=(3, 32, 32))
    rng = np.random.default_rng(0)
    big = [encode_stamp(im) for im in rng.normal(0, 0.05, (3, 3, 48, 48)).astype(np.float32)]
    small = [encode_stamp(im) for im in rng.normal(0, 0.05, (1, 3, 32, 32)).astype(np.float32)]
    table = pa.table({"id": ["a", "b", "c", "d"], "stamp": pa.array(big + small, pa.binary())})
    out = load_scorer([path], temperature=1.0).score_table(table)
    assert out.column("status").to_pylist() == ["shape_mismatch"] * 3 + ["ok"]
    assert np.isfinite(out.column("logit").to_numpy()[3]) and np.isnan(out.column("logit").to_numpy()[:3]).all()
