"""jobs/mock_catalog.py through spark-submit: exact row count, identical to the function API."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from dhs_gen.storage import is_complete, read_parquet
from dhs_gen.survey import MockDR10

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.spark
def test_mock_catalog_job_matches_function(tmp_path):
    out = tmp_path / "cat"
    cmd = ["spark-submit", "--master", "local[2]", str(ROOT / "jobs" / "mock_catalog.py"), "--output", str(out),
           "--set", "n_rows=3000", "--set", "seed=4", "--set", "partitions=3"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads([ln for ln in proc.stdout.splitlines() if ln.startswith("{")][-1])
    assert summary["rows_out"] == summary["rows_requested"] == 3000
    assert is_complete(str(out))
    got = read_parquet(str(out)).to_pandas().sort_values(["brickname", "objid"]).reset_index(drop=True)
    want = MockDR10(seed=4).catalog(3000).to_pandas().sort_values(["brickname", "objid"]).reset_index(drop=True)
    assert list(got.columns) == list(want.columns)
    assert got.equals(want)
