"""`dhs completeness`: the Spark aggregation gives exactly the local function's tables."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from dhs_gen import storage
from dhs_gen.selection.completeness import compute_completeness
from dhs_gen.selection.config import SelectionConfig
from dhs_gen.selection.synthetic import synthetic_selection_set

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    base = tmp_path_factory.mktemp("sel")
    injections, scores, negatives = synthetic_selection_set(n_per_cell=15, n_negatives=5000, seed=5,
                                                            models=("m1", "m2"))
    uris = {}
    for name, table in (("injections", injections), ("scores", scores), ("negative_scores", negatives)):
        uris[name] = str(base / f"{name}.parquet")
        storage.write_parquet(table, uris[name])
    return uris, (injections, scores, negatives), base


def _cfg(uris, **extra):
    return SelectionConfig(**uris, bootstrap={"n_boot": 50, "nside": 8, "seed": 3},
                           provenance={"allow_unverified": True}, **extra)


@pytest.mark.spark
def test_spark_equals_local(spark, inputs):
    from jobs.selection_completeness import run

    uris, tables, _ = inputs
    cfg = _cfg(uris)
    # several partitions: the batch split must not matter
    out = run(spark.newSession(), cfg)["results"]
    local = compute_completeness(*tables, cfg)
    assert out["counts"].equals(local["counts"])
    for name in ("completeness", "thresholds", "ensemble", "coverage"):
        pd.testing.assert_frame_equal(out[name].to_pandas(), local[name].to_pandas(), check_exact=True)
    assert out["completeness"]["n"].to_numpy().sum() > 0


@pytest.mark.slow
@pytest.mark.spark
def test_spark_submit(inputs):
    uris, _, base = inputs
    out = base / "spark_out"
    sets = [f"{k}={v}" for k, v in uris.items()] + [f"output={out}", "provenance.allow_unverified=true",
                                                     "bootstrap.n_boot=20", "figures=false"]
    cmd = ["spark-submit", "--master", "local[2]", str(ROOT / "jobs" / "selection_completeness.py"),
           "--master", "local[2]"]
    for s in sets:
        cmd += ["--set", s]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads([line for line in proc.stdout.splitlines() if line.startswith('{"')][-1])
    assert summary["n_injections"] == 8 * 5 * 15 and summary["models"] == ["m1", "m2"]
    assert storage.is_complete(str(out))
    table = storage.read_parquet(str(out / "completeness.parquet"))
    assert table.num_rows == summary["completeness_rows"]
    report = json.loads((out / "selection_summary.json").read_text())
    assert {r["subset"] for r in report["headline"]} == {"all", "clean"}
    assert all(p["verified"] is False for p in report["provenance"])
    assert report["tables"]["completeness"] == str(out / "completeness.parquet")  # not the staging folder


def test_missing_inputs_named(spark, tmp_path):
    from jobs.selection_completeness import run

    with pytest.raises(SystemExit, match="negative_scores"):
        run(spark, SelectionConfig(injections="x", scores="y"))
