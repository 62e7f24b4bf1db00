"""sample_negatives job: spark-submit, gates, report, and equality with the local sampler."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from dhs_gen import storage
from dhs_gen.catalog.config import PoolConfig, SamplingConfig, SplitConfig
from dhs_gen.catalog.pool import build_pool
from dhs_gen.catalog.sampling import sample_local
from tests.dhs_gen.catalog.inputs import synthetic_tractor

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.spark
def test_sample_negatives_spark_submit(tmp_path):
    table = synthetic_tractor(6000, seed=21)
    pool, _ = build_pool(table, load_no_lenses(), PoolConfig(), SplitConfig())
    src = tmp_path / "pool"
    src.mkdir()
    for i in range(3):
        pq.write_table(pool.slice(i * 1200, 1200 if i < 2 else None), src / f"part-{i}.parquet")
    storage.mark_complete(str(src))
    out = tmp_path / "sampled"
    proc = subprocess.run(
        ["spark-submit", "--master", "local[2]", str(ROOT / "jobs" / "sample_negatives.py"), "--master", "local[2]",
         "--pool", str(src), "--output", str(out), "--set", "sampling.target_total=900", "--set", "sampling.seed=3"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"})
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-2000:]
    summary = json.loads([line for line in proc.stdout.splitlines() if line.startswith('{"')][-1])
    assert summary["gates_passed"] and summary["taken"] == summary["rows_out"] == 900
    got = storage.read_parquet(str(out)).to_pandas()
    local, report = sample_local(pool.to_pandas(), SamplingConfig(target_total=900, seed=3))
    assert set(got["galaxy_id"]) == set(local["galaxy_id"])
    assert dict(zip(got["galaxy_id"], got["sample_hash"])) == dict(zip(local["galaxy_id"], local["sample_hash"]))
    records = storage.read_json(str(out / "_report.json"))
    assert {r["pool"] for r in records} == {"N1", "N2"} and sum(r["taken"] for r in records) == 900
    assert set(records[0]) == {"nobs_z_bin", "type_bin", "pool", "available", "requested", "quota", "taken",
                               "shortfall"}
    assert storage.is_complete(str(out))


def load_no_lenses():
    import pandas as pd

    return pd.DataFrame({"name": [], "ra": [], "dec": []})
