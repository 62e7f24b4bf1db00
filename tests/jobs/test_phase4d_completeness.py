"""Phase 4d job: spark-submit on a stamps-metrics table equals the function API."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from dhs_gen import storage
from dhs_gen.injection.proxy_completeness import ProxyConfig, proxy_completeness

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.spark
def test_spark_submit_matches_the_function_api(tmp_path):
    rng = np.random.default_rng(4)
    n = 3000
    stamps = pa.table({
        "task_id": [f"t{i}" for i in range(n)],
        "status": np.where(rng.random(n) < 0.03, "render_error: x", "ok").tolist(),
        "cutout_ok": rng.random(n) > 0.02, "theta_e_arcsec": rng.uniform(0.5, 3.0, n).astype(np.float32),
        "x_ratio": rng.uniform(0.2, 2.5, n).astype(np.float32),
        "bad_pixel_frac": np.where(rng.random(n) < 0.1, 0.3, 0.0).astype(np.float32),
        "arc_snr_sum": rng.uniform(0, 30, n).astype(np.float32), "arc_snr_max": rng.uniform(0, 8, n).astype(np.float32),
    })
    for i in range(3):
        storage.write_parquet(stamps.slice(i * 1000, 1000), str(tmp_path / "stamps" / f"part-{i}.parquet"))
    storage.mark_complete(str(tmp_path / "stamps"))
    out = tmp_path / "p4d"
    proc = subprocess.run(
        ["spark-submit", "--master", "local[2]", str(ROOT / "jobs" / "phase4d_completeness.py"),
         "--master", "local[2]", "--config", str(ROOT / "configs" / "phase4d_demo.yaml"),
         "--stamps", str(tmp_path / "stamps"), "--output", str(out)],
        capture_output=True, text=True, timeout=400, env={**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads([line for line in proc.stdout.splitlines() if line.startswith('{"')][-1])
    assert summary["rows_in"] == n and summary["rows_valid"] < n
    got = storage.read_parquet(str(out / "completeness.parquet"))
    expected = proxy_completeness(stamps, ProxyConfig())
    assert got.num_rows == expected.num_rows == summary["rows_out"]
    assert got.sort_by([("subset", "ascending"), ("threshold_value", "ascending"), ("axis", "ascending"),
                        ("bin_index", "ascending")]).equals(
        expected.sort_by([("subset", "ascending"), ("threshold_value", "ascending"), ("axis", "ascending"),
                          ("bin_index", "ascending")]))
    assert storage.is_complete(str(out))
