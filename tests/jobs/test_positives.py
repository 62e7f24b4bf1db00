"""positives job: lenscat x Tractor through the HEALPix-bucketed Spark join, against the local crossmatch."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from dhs_gen import storage
from dhs_gen.catalog.config import PositivesConfig, SplitConfig
from dhs_gen.catalog.positives import build_positives_local, selected_lenses
from tests.dhs_gen.catalog.inputs import synthetic_tractor

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tractor_dir(tmp_path_factory):
    lenses = selected_lenses(PositivesConfig()).iloc[::100]
    table = synthetic_tractor(1500, seed=4, at=(lenses["ra"].to_numpy(), lenses["dec"].to_numpy()))
    out = tmp_path_factory.mktemp("tractor")
    for i in range(3):
        pq.write_table(table.slice(i * 600, 600), out / f"part-{i}.parquet")
    return out, table


@pytest.mark.spark
def test_positives_job_matches_local(spark, tractor_dir, tmp_path):
    from jobs.positives import main

    src, table = tractor_dir
    assert main(["--tractor", str(src), "--output", str(tmp_path / "pos")]) == 0
    got = storage.read_parquet(str(tmp_path / "pos")).to_pandas().sort_values("name").reset_index(drop=True)
    local = build_positives_local(table, PositivesConfig(), SplitConfig()).to_pandas()
    local = local.sort_values("name").reset_index(drop=True)
    assert len(got) == 5104 and (got["status"] == "ok").sum() == 52
    assert list(got["galaxy_id"].fillna("")) == list(local["galaxy_id"].fillna(""))
    assert list(got["split"]) == list(local["split"])
    summary = storage.read_json(str(tmp_path / "pos" / "_summary.json"))
    assert summary["status"] == {"ok": 52, "no_tractor_match": 5052}


@pytest.mark.spark
def test_positives_spark_submit(tractor_dir, tmp_path):
    src, _ = tractor_dir
    proc = subprocess.run(
        ["spark-submit", "--master", "local[2]", str(ROOT / "jobs" / "positives.py"), "--master", "local[2]",
         "--tractor", str(src), "--output", str(tmp_path / "pos"), "--set", "positives.tier_b_weight=0.4"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads([line for line in proc.stdout.splitlines() if line.startswith('{"')][-1])
    assert summary["rows_out"] == summary["lenses"] == 5104
    table = storage.read_parquet(str(tmp_path / "pos")).to_pandas()
    assert set(table.loc[table.tier == "B", "sample_weight"].astype("float64").round(3)) == {0.4}
