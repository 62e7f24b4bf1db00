"""`dhs score-cutouts`: real DR10 cutouts (101 px) scored by a 64-px model through the recorded crop
rule or refused, every file a row, the same numbers from Python and from the command line."""
from __future__ import annotations

import glob
import json
import os
import shutil

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from dhs_gen.data_files import data_path
from dhs_gen.io.stamps import decode_stamp_npz


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    import torch

    from dhs_gen.storage import write_json
    from training.export import export_frozen_model, load_frozen_model
    from training.models import build_model

    run = tmp_path_factory.mktemp("run")
    torch.manual_seed(0)
    path = str(run / "frozen")
    export_frozen_model(build_model("small_cnn", in_chans=3), {}, path, data_manifest_hash="t",
                        preprocess={"norm": "outer_mad"}, input_shape=(3, 64, 64))
    write_json(str(run / "eval" / "calibration.json"),
               {"kind": "single", "model_id": load_frozen_model(path).model_id, "temperature": 2.0,
                "prevalence": 0.5})
    return path


@pytest.fixture(scope="module")
def cutouts(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cutouts")
    real = sorted(glob.glob(os.path.join(data_path("dr10_cutouts"), "0*.npz")))[:3]
    for f in real:
        shutil.copy(f, folder)
    (folder / "broken.npz").write_bytes(b"PK\x03\x04 truncated")
    return str(folder), [os.path.basename(f)[:-4] for f in real]


def test_python_api_crops_by_rule_and_keeps_failures(model, cutouts):
    from dhs.score_cutouts import score_cutouts
    from training.eval.calibration import p_at_prevalence, sigmoid
    from training.export import load_frozen_model

    folder, ids = cutouts
    table = score_cutouts([folder], model, prevalence=1e-3).to_pandas().set_index("id")
    assert sorted(table.index) == sorted([*ids, "broken"])
    assert table.loc["broken", "status"] == "decode_error" and np.isnan(table.loc["broken", "p"])
    ok = table.loc[ids]
    assert (ok["status"] == "ok").all() and (ok["crop"] == "101x101->64x64@(18,18)").all()
    raw = np.stack([decode_stamp_npz(os.path.join(folder, f"{i}.npz")).image for i in ids])
    logits = load_frozen_model(model).predict_logits(np.ascontiguousarray(raw[:, :, 18:82, 18:82]))
    np.testing.assert_allclose(ok["logit"], logits, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ok["p"], sigmoid(logits / 2.0), rtol=1e-6)  # the run's calibration.json
    np.testing.assert_allclose(ok["p_at_prevalence"], p_at_prevalence(ok["p"], 1e-3), rtol=1e-9)
    assert (ok["p_at_prevalence"] < ok["p"]).all()
    assert ok["ra"].notna().all() and np.allclose(ok["pixel_scale_arcsec"], 0.262)


def test_refuse_rule_scores_nothing_of_another_size(model, cutouts):
    from dhs.score_cutouts import score_cutouts

    folder, ids = cutouts
    table = score_cutouts([folder], model, on_size_mismatch="refuse").to_pandas().set_index("id")
    assert (table.loc[ids, "status"] == "size_mismatch").all() and table.loc[ids, "p"].isna().all()


def test_command_line_writes_the_table(model, cutouts, tmp_path, capsys):
    from dhs.score_cutouts import main, score_cutouts

    folder, ids = cutouts
    out = tmp_path / "scores.parquet"
    assert main([folder, "--model", model, "--output", str(out)]) == 0
    err = capsys.readouterr().err
    assert "scored 3 of 4 cutouts" in err and "101x101->64x64" in err and "decode_error" in err
    written = pq.read_table(out)
    about = json.loads(written.schema.metadata[b"dhs.score_cutouts"])
    assert about["input_size_pix"] == 64 and about["temperature"] == 2.0 and about["calibrated_prevalence"] == 0.5
    assert written.schema.field("pixel_scale_arcsec").metadata[b"unit"] == b"arcsec/pix"
    pd.testing.assert_frame_equal(written.to_pandas(), score_cutouts([folder], model).to_pandas())
    csv = tmp_path / "scores.csv"
    assert main([os.path.join(folder, f"{ids[0]}.npz"), "--model", model, "--temperature", "1",
                 "--output", str(csv)]) == 0
    assert pd.read_csv(csv)["status"].tolist() == ["ok"]


def test_clear_errors(model, cutouts, tmp_path):
    from dhs.score_cutouts import score_cutouts

    folder, _ = cutouts
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no cutout files"):
        score_cutouts([str(empty)], model)
    lone = tmp_path / "lone"
    shutil.copytree(model, lone / "frozen")
    with pytest.raises(ValueError, match="no calibration"):
        score_cutouts([folder], str(lone / "frozen"))


def test_registered_in_the_dhs_command(model, cutouts, capsys):
    from dhs.cli import main

    folder, _ = cutouts
    assert main(["score-cutouts", folder, "--model", model]) == 0
    assert capsys.readouterr().out.startswith("id,file,logit,p,status")
