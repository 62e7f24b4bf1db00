"""Training loop on CPU: learning vs a shuffled-label control, exact resume, NaN stop, export,
and a 2-process gloo DDP run under torchrun."""
from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from dhs_gen.io.stamps import encode_stamp
from training.data.shards import convert_to_shards
from training.export import load_frozen_model
from training.train import NonFiniteLoss, TrainConfig, main, run

from .conftest import synth_pairs
from .conftest import train_config as _cfg


@pytest.fixture(scope="module")
def plain_shards(tmp_path_factory):
    """Rows: positives (label 1) and controls (label 0) of 160 synthetic pairs, plus a copy with
    the labels shuffled."""
    root = tmp_path_factory.mktemp("plain")
    pos, ctrl, _, _ = synth_pairs(96, 32, seed=5)
    n = len(pos)
    ids = [f"p{i}" for i in range(n)] + [f"c{i}" for i in range(n)]
    labels = np.r_[np.ones(n), np.zeros(n)].astype(np.int8)
    splits = np.where(np.arange(2 * n) % 4 == 0, "val", "train")
    blobs = pa.array([encode_stamp(x) for x in np.concatenate([pos, ctrl])], pa.binary())
    out = {}
    for name, lab in (("real", labels), ("shuffled", np.random.default_rng(0).permutation(labels))):
        pq.write_table(pa.table({"galaxy_id": ids, "stamp": blobs, "label": lab, "split": splits.tolist()}),
                       root / f"{name}.parquet")
        out[name] = convert_to_shards(str(root / f"{name}.parquet"), str(root / name))
    return out


def test_learns_easy_injections_and_shuffled_labels_do_not(plain_shards, tmp_path):
    aucs = {}
    for name, shards in plain_shards.items():
        res = run(_cfg(shards, tmp_path / name, data__mode="plain", data__batch_size=32, optim__epochs=3))
        aucs[name] = res["best_auc"]
    assert aucs["real"] > 0.95, aucs
    assert aucs["shuffled"] < 0.75, aucs


def test_paired_run_writes_metrics_checkpoints_and_frozen_model(paired_shards, tmp_path):
    res = run(_cfg(paired_shards, tmp_path, model__theta_head=True, run__tensorboard=True))
    out = tmp_path
    assert list((out / "tensorboard").glob("events.*"))
    assert list(out.glob("*resolved_config.yaml"))
    for name in ("best.pt", "last.pt", "metrics.csv", "metrics.jsonl"):
        assert (out / name).exists(), name
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [0, 1, 2]
    for key in ("train_loss", "val_loss", "val_auc", "val_precision_at_recall90", "val_recall_at_precision90",
                "val_ece", "p_hard"):
        assert key in rows[0]
    assert rows[0]["val_n"] == 144  # 48 val pairs x 3 views, each once
    assert rows[0]["p_hard"] == pytest.approx(0.5)
    fm = load_frozen_model(str(out / "frozen"))
    assert fm.model_id == res["model_id"]
    from training.data.store import ShardStore

    store = ShardStore(paired_shards)
    assert fm.data_manifest_hash == store.data_hash
    train_ids = set(store.column("id")[store.column("split") == "train"])
    assert fm.trained_ids() == train_ids
    assert fm.trained_host_ids() == set(store.column("host_id")[store.column("split") == "train"])
    fm.assert_disjoint(store.column("id")[store.column("split") == "val"])
    imgs = store.gather("stamp", np.arange(4))
    assert fm.predict_logits(imgs).shape == (4,)


def test_nonfinite_loss_stops_with_batch_ids(tmp_path):
    pos, ctrl, hard, theta = synth_pairs(16, 16, seed=2)
    pos[5, 1, 3, 3] = np.nan
    table = pa.table({"task_id": [f"t{i}" for i in range(16)], "region_split": ["train"] * 8 + ["val"] * 8,
                      "stamp": pa.array([encode_stamp(x) for x in pos], pa.binary()),
                      "ctrl_stamp": pa.array([encode_stamp(x) for x in ctrl], pa.binary())})
    pq.write_table(table, tmp_path / "s.parquet")
    shards = convert_to_shards(str(tmp_path / "s.parquet"), str(tmp_path / "sh"), nonfinite="keep")
    cfg = _cfg(shards, tmp_path / "run", data__batch_size=4, preprocess__norm="none")
    with pytest.raises(NonFiniteLoss) as info:
        run(cfg)
    assert "t5" in info.value.ids
    report = json.loads((tmp_path / "run" / "nonfinite_batch.json").read_text())
    assert "t5" in report["ids"] and report["epoch"] == 0
    assert not (tmp_path / "run" / "frozen").exists()
    cfg_path = tmp_path / "cfg.yaml"
    cfg_path.write_text(yaml.safe_dump(json.loads(cfg.model_dump_json())))
    assert main(["--config", str(cfg_path)]) == 3


def test_bad_config_is_rejected(tmp_path, capsys):
    cfg_path = tmp_path / "cfg.yaml"
    cfg_path.write_text(yaml.safe_dump({"data": {"shards": "x", "batchsize": 3}, "run": {"out_dir": "o"}}))
    assert main(["--config", str(cfg_path)]) == 2
    assert "batchsize" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["train", "train_real", "train_hybrid", "train_demo"])
def test_shipped_configs_validate(name):
    from pathlib import Path

    from dhs_gen.config import load_config

    path = Path(__file__).resolve().parents[2] / "configs" / f"{name}.yaml"
    cfg = load_config(TrainConfig, str(path))
    assert cfg.data.mode in ("paired", "plain")


def test_early_stopping(tmp_path):
    pos, ctrl, hard, _ = synth_pairs(16, 16, seed=4)
    table = pa.table({"task_id": [f"t{i}" for i in range(16)], "region_split": ["train", "val"] * 8,
                      "stamp": pa.array([encode_stamp(x) for x in pos], pa.binary()),
                      "ctrl_stamp": pa.array([encode_stamp(x) for x in ctrl], pa.binary())})
    pq.write_table(table, tmp_path / "s.parquet")
    shards = convert_to_shards(str(tmp_path / "s.parquet"), str(tmp_path / "sh"))
    # easy data: val AUC saturates at 1.0 within a few epochs, then cannot improve; patience 1
    res = run(_cfg(shards, tmp_path / "run", data__batch_size=4, optim__epochs=12,
                   run__early_stopping_patience=1))
    assert res["epoch"] == res["best_epoch"] + 1 < 11 and res["model_id"]
    rows = (tmp_path / "run" / "metrics.csv").read_text().splitlines()
    assert len(rows) == res["epoch"] + 2  # header + epochs 0..stop
