"""spark-submit --master local[2] smoke of a trivial job through the production session builder."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pyarrow as pa
import pytest

from dhs_gen import storage
from jobs.healthcheck import OUTPUT_SCHEMA, square_batch

ROOT = Path(__file__).resolve().parents[2]


def test_batch_function_directly():
    out = square_batch(pa.RecordBatch.from_arrays([pa.array([1, 2, 3])], names=["id"]), seed=1)
    assert out.schema == OUTPUT_SCHEMA and out.column("square").to_pylist() == [1, 4, 9]


@pytest.mark.spark
def test_spark_submit_local(tmp_path):
    out = tmp_path / "hc"
    proc = subprocess.run(
        ["spark-submit", "--master", "local[2]", str(ROOT / "jobs" / "healthcheck.py"),
         "--master", "local[2]", "--output", str(out), "--set", "rows=500"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads([line for line in proc.stdout.splitlines() if line.startswith('{"')][-1])
    assert summary["rows_in"] == summary["rows_out"] == summary["ok"] == 500
    table = storage.read_parquet(str(out))
    assert sorted(table.column("id").to_pylist()) == list(range(500))
    assert storage.is_complete(str(out)) and (out / "_resolved_config.yaml").exists()
