"""dhs evaluate on a run directory: JSON, calibration file, predictions and figures in one command."""
from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from dhs_gen import storage


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    import torch

    from tests.training.conftest import write_stamps_table  # the training tests' synthetic pairs
    from training.data.shards import convert_to_shards
    from training.export import export_frozen_model
    from training.models import build_model

    root = tmp_path_factory.mktemp("evalrun")
    src = write_stamps_table(root / "stamps.parquet", 120, splits=("train", "val", "test"))
    shards = convert_to_shards(str(src), str(root / "shards"), rows_per_shard=64)
    run = root / "run"
    torch.manual_seed(0)
    export_frozen_model(build_model("small_cnn", in_chans=3), {"data": {"shards": shards}}, str(run / "frozen"),
                        data_manifest_hash="t", preprocess={"norm": "outer_mad"},
                        trained_ids=[f"t0_{i:05d}" for i in range(0, 120, 3)])
    (run / "_resolved_config.yaml").write_text(yaml.safe_dump({"data": {"shards": shards, "mode": "paired"}}))
    (run / "metrics.csv").write_text("epoch,train_loss,val_loss,val_auc\n0,0.7,0.69,0.6\n1,0.5,0.52,0.8\n")
    return run


def test_evaluate_run_dir(run_dir, capsys):
    from training.evaluate import main

    rc = main(["--run-dir", str(run_dir), "--set", "report.n_boot=20", "--set", "gates.cv_folds=3",
               "--set", "n_gallery=6", "--set", "n_six_channel=2"])
    assert rc == 0, capsys.readouterr().err
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    out = run_dir / "eval"
    result = json.loads((out / "evaluation.json").read_text())
    assert result["model_id"].startswith(line["model_id"])
    rep = result["report"]
    assert rep["metrics"]["test"]["n"] == 80 and rep["metrics"]["val"]["n"] == 80  # 40 pairs each
    assert rep["hard_negatives"]["n"] == 40
    assert set(result["gates"]["shortcut_gates"]["gates"]) == {"G1", "G2", "G3", "G4", "G5"}
    assert result["gates"]["shortcut_gates"]["model"] is True
    calib = json.loads((out / "calibration.json").read_text())
    assert calib["kind"] == "single" and calib["model_id"] == result["model_id"] and calib["temperature"] > 0
    pred = storage.read_parquet(str(out / "predictions.parquet")).to_pandas()
    assert set(pred["kind"]) == {"pos", "ctrl", "hardneg"} and set(pred["split"]) == {"val", "test"}
    assert np.allclose(pred["p"], 1 / (1 + np.exp(-pred["logit"] / calib["temperature"])))
    for name in ("roc", "reliability", "gates", "gallery_top", "six_channel", "training_curves"):
        assert (out / "figures" / f"eval_{name}.png").stat().st_size > 2000, name


def test_evaluate_refuses_trained_rows(run_dir, tmp_path, capsys):
    from training.evaluate import main

    # evaluating the training split as "test" must be refused: the model saw those ids
    rc = main(["--run-dir", str(run_dir), "--out-dir", str(tmp_path), "--set", "report.test_split=train",
               "--set", "report.n_boot=0"])
    assert rc == 2 and "used to train" in capsys.readouterr().err


def test_evaluate_with_ensemble_member(run_dir, tmp_path, capsys):
    import torch

    from training.evaluate import main
    from training.export import export_frozen_model, load_frozen_model
    from training.models import build_model

    torch.manual_seed(1)
    member = str(tmp_path / "member")
    export_frozen_model(build_model("small_cnn", in_chans=3), {"seed": 1}, member, data_manifest_hash="t",
                        preprocess={"norm": "outer_mad"}, trained_ids=[])
    out = tmp_path / "eval"
    rc = main(["--run-dir", str(run_dir), "--out-dir", str(out), "--member", member, "--set", "report.n_boot=10",
               "--set", "gates.cv_folds=3", "--set", "n_gallery=0", "--set", "n_six_channel=0"])
    assert rc == 0, capsys.readouterr().err
    result = json.loads((out / "evaluation.json").read_text())
    ens = result["ensemble"]
    assert set(ens["members"]) == {result["model_id"], load_frozen_model(member).model_id}
    assert ens["best_member"] in ens["members"] and "difference" in ens["roc_auc"]
    calib = json.loads((out / "ensemble_calibration.json").read_text())
    assert calib["kind"] == "ensemble" and set(calib["member_temperatures"]) == set(ens["members"])
    from training.eval.scoring import load_scorer

    scorer = load_scorer([str(run_dir / "frozen"), member], calibration=calib)  # dhs score accepts it
    assert scorer.model_id.startswith("ensemble-")
