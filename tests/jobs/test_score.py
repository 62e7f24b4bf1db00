"""dhs score: Spark batch scoring equals local scoring, whatever the partitioning; spark-submit smoke."""
from __future__ import annotations

import argparse
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from dhs_gen import storage
from dhs_gen.io.stamps import encode_stamp
from jobs.score import ScoreConfig, _body
from training.eval.scoring import load_scorer

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def frozen(tmp_path_factory):
    import torch

    from training.export import export_frozen_model
    from training.models import build_model

    torch.manual_seed(0)
    path = str(tmp_path_factory.mktemp("score") / "model")
    export_frozen_model(build_model("small_cnn", in_chans=3), {}, path, data_manifest_hash="t",
                        preprocess={"norm": "outer_mad"}, trained_ids=[])
    return path


@pytest.fixture(scope="module")
def stamps(tmp_path_factory):
    rng = np.random.default_rng(1)
    n = 60
    images = rng.normal(0, 0.05, (n, 3, 24, 24)).astype(np.float32)
    blobs = [encode_stamp(im) for im in images]
    blobs[7] = b"broken"
    table = pa.table({"task_id": [f"t{i:03d}" for i in range(n)], "stamp": pa.array(blobs, pa.binary()),
                      "theta_e_arcsec": rng.uniform(0.5, 2.5, n).astype(np.float32)})
    path = str(tmp_path_factory.mktemp("score") / "stamps")
    storage.write_parquet(table.slice(0, 30), storage.join_uri(path, "part-0.parquet"))
    storage.write_parquet(table.slice(30), storage.join_uri(path, "part-1.parquet"))
    storage.mark_complete(path)
    return path, table


@pytest.mark.spark
def test_spark_scores_equal_local_scores(spark, frozen, stamps, tmp_path):
    path, table = stamps
    local = load_scorer([frozen], temperature=1.7).score_table(table, id_column="task_id",
                                                              keep_columns=["theta_e_arcsec"])
    cfg = ScoreConfig(input=path, output=str(tmp_path / "scores"), models=[frozen], temperature=1.7,
                      id_column="task_id", keep_columns=["theta_e_arcsec"], partitions=2, max_records_per_batch=16,
                      top_k=5, gallery=4)
    summary = _body(spark, cfg, argparse.Namespace())
    assert summary["rows_in"] == summary["rows_out"] == 60
    assert summary["status_counts"] == {"ok": 59, "decode_error": 1}
    out = storage.read_parquet(cfg.output).sort_by("id")
    assert out.column("id").to_pylist() == local.column("id").to_pylist()
    np.testing.assert_allclose(out.column("logit").to_numpy(), local.column("logit").to_numpy(), rtol=1e-5,
                               atol=1e-6)
    assert out.column("theta_e_arcsec").to_pylist() == local.column("theta_e_arcsec").to_pylist()
    top = storage.read_parquet(cfg.output + "_top_k/top_k.parquet")
    assert top.num_rows == 5 and np.all(np.diff(top.column("model_score").to_numpy()) <= 0)
    assert Path(summary["gallery"]).stat().st_size > 1000
    assert storage.is_complete(cfg.output)


@pytest.mark.spark
@pytest.mark.slow
def test_spark_submit(frozen, stamps, tmp_path):
    path, _ = stamps
    calib = tmp_path / "calibration.json"
    from training.export import load_frozen_model

    calib.write_text(json.dumps({"kind": "single", "model_id": load_frozen_model(frozen).model_id,
                                 "temperature": 1.0}))
    out = tmp_path / "scores"
    proc = subprocess.run(
        ["spark-submit", "--master", "local[2]", str(ROOT / "jobs" / "score.py"), "--master", "local[2]",
         "--input", path, "--output", str(out), "--model", frozen, "--calibration", str(calib),
         "--set", "id_column=task_id", "--set", "gallery=0"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads([line for line in proc.stdout.splitlines() if line.startswith('{"')][-1])
    assert summary["rows_in"] == summary["rows_out"] == 60 and summary["status_counts"]["decode_error"] == 1
    assert (out / "_resolved_config.yaml").exists() and storage.read_parquet(str(out)).num_rows == 60
