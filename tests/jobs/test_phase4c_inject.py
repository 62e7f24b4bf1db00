"""Phase 4c job: real DR10 host cutouts as a cutout_index dataset; spark-submit; 1 vs 4 partitions."""
from __future__ import annotations

import json
import os
import subprocess
from argparse import Namespace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from dhs_gen import storage
from dhs_gen.data_files import DATA_DIR
from dhs_gen.injection.inject import InjectConfig
from dhs_gen.injection.manifest import ManifestConfig, build_manifest
from dhs_gen.io.stamps import decode_stamp_npz, encode_stamp
from dhs_gen.schemas import conform, validate_table
from jobs.phase4c_inject import Phase4cConfig, _body

ROOT = Path(__file__).resolve().parents[2]
VARIANTS = [{"source_mode": "sersic", "artifact_profile": "strong"}, {"source_mode": "cosmos"},
            {"source_mode": "sersic_clumps", "artifact_profile": "mild"}]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """(manifest URI, cutouts URI, n rows): 6 real cutouts (one id missing), 3 injections each."""
    root = tmp_path_factory.mktemp("p4c")
    files = sorted((DATA_DIR / "dr10_cutouts").glob("*.npz"))
    stamps = [decode_stamp_npz(f, nan_policy="report") for f in files]
    ids = [f.stem for f in files]
    n = len(ids)
    cutouts = conform(pa.table({
        "galaxy_id": ids, "ra": [float(s.meta.get("ra", 1.0)) for s in stamps],
        "dec": [float(s.meta.get("dec", 1.0)) for s in stamps], "size": np.full(n, 101, np.int32),
        "bands": ["grz"] * n, "cutout": [encode_stamp(s.image) for s in stamps], "cutout_ok": [True] * n,
        **{f"psfsize_{b}": np.full(n, v, np.float32) for b, v in zip("grz", (1.45, 1.3, 1.15))},
        "status": ["ok"] * n}), "cutout_index")
    storage.write_parquet(cutouts.slice(0, n - 1), str(root / "cutouts" / "part-0.parquet"))
    hosts = cutouts.select(["galaxy_id", "ra", "dec"])
    manifest = build_manifest(hosts, ManifestConfig(injections_per_host=3, variants=VARIANTS))
    storage.write_parquet(manifest, str(root / "manifest" / "part-0.parquet"))
    storage.mark_complete(str(root / "cutouts"))
    storage.mark_complete(str(root / "manifest"), {"rows_out": manifest.num_rows})
    return str(root / "manifest"), str(root / "cutouts"), manifest.num_rows


@pytest.mark.spark
def test_one_vs_four_partitions_give_identical_bytes(spark, inputs, tmp_path):
    manifest, cutouts, n = inputs
    tables = []
    for parts in (1, 4):
        cfg = Phase4cConfig(partitions=parts, rows_per_batch=5, inject=InjectConfig(arc_poisson=True))
        out = str(tmp_path / f"s{parts}")
        summary = _body(spark, cfg, Namespace(output=out, manifest=manifest, cutouts=cutouts))
        assert summary["rows_in"] == summary["rows_out"] == n
        tables.append(storage.read_parquet(out).sort_by("task_id"))
    assert tables[0].equals(tables[1])
    validate_table(tables[0], "stamps")
    status = tables[0].column("status").to_pylist()
    assert status.count("missing_cutout") == 3 and status.count("ok") == n - 3


@pytest.mark.spark
def test_duplicated_cutout_ids_still_give_one_row_per_manifest_row(spark, inputs, tmp_path):
    manifest, cutouts, n = inputs
    table = storage.read_parquet(cutouts)
    for part in range(2):  # every host twice, in two files
        storage.write_parquet(table, str(tmp_path / "dup" / f"part-{part}.parquet"))
    cfg = Phase4cConfig(partitions=2, inject=InjectConfig(arc_poisson=True))
    outs = []
    for name, uri in (("once", cutouts), ("twice", str(tmp_path / "dup"))):
        summary = _body(spark, cfg, Namespace(output=str(tmp_path / name), manifest=manifest, cutouts=uri))
        assert summary["rows_in"] == summary["rows_out"] == n
        outs.append(storage.read_parquet(str(tmp_path / name)).sort_by("task_id"))
    assert outs[0].equals(outs[1])


@pytest.mark.spark
def test_spark_submit_local(tmp_path, inputs):
    manifest, cutouts, n = inputs
    out = tmp_path / "stamps"
    proc = subprocess.run(
        ["spark-submit", "--master", "local[2]", str(ROOT / "jobs" / "phase4c_inject.py"), "--master", "local[2]",
         "--config", str(ROOT / "configs" / "phase4c_demo.yaml"), "--manifest", manifest, "--cutouts", cutouts,
         "--set", "partitions=2", "--output", str(out)],
        capture_output=True, text=True, timeout=400, env={**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads([line for line in proc.stdout.splitlines() if line.startswith('{"')][-1])
    assert summary["rows_in"] == summary["rows_out"] == n and summary["ok"] == n - 3
    table = storage.read_parquet(str(out))
    assert table.num_rows == n and storage.is_complete(str(out))
    ok = table.filter(pa.compute.equal(table["status"], "ok"))
    assert ok.column("stamp").null_count == 0 and ok.column("hardneg_stamp").null_count == 0
