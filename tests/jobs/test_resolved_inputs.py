"""A job's _resolved_config.yaml and _summary.json record the inputs it was given by flags."""
from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import yaml


def test_cutouts_job_records_its_manifest_flag(tmp_path, spark):
    from jobs.cutouts import main

    manifest = tmp_path / "manifest.parquet"
    pq.write_table(pa.table({"galaxy_id": ["a", "b"], "ra": [150.1, 150.2], "dec": [2.1, 2.2]}), manifest)
    out = tmp_path / "cutouts"
    assert main(["--input", str(manifest), "--output", str(out), "--set", "partitions=1"]) == 0
    resolved = yaml.safe_load((out / "_resolved_config.yaml").read_text())
    assert resolved["manifest"] == str(manifest)  # was "" (the config default) before
    summary = json.loads((out / "_summary.json").read_text())
    assert summary["inputs"] == {"manifest": str(manifest)}
    assert summary["overrides"] == ["partitions=1"] and summary["config_source"] is None
