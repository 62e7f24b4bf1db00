"""Phase 4a job: spark-submit on a small real-LRG host table; partition-independent output."""
from __future__ import annotations

import json
import os
import subprocess
from argparse import Namespace
from pathlib import Path

import pyarrow as pa
import pytest

from dhs_gen import storage
from dhs_gen.config import load_config
from dhs_gen.injection.manifest import ManifestConfig, build_manifest, host_plan, source_colour_summary
from dhs_gen.schemas import validate_table
from dhs_gen.survey import load_lrg_sample
from jobs.phase4a_manifest import Phase4aConfig, _body, manifest_batch

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def hosts_uri(tmp_path_factory):
    frame = load_lrg_sample().head(60)
    table = pa.Table.from_pandas(frame[["ra", "dec", "brickname", "flux_g", "flux_r", "flux_z", "flux_w1"]].assign(
        galaxy_id=[f"lrg{i}" for i in frame["lrg_index"]]), preserve_index=False)
    path = tmp_path_factory.mktemp("p4a") / "hosts.parquet"
    storage.write_parquet(table, str(path))
    return str(path), table


def test_batch_function_matches_the_library(hosts_uri):
    _, table = hosts_uri
    cfg = ManifestConfig(injections_per_host=2)
    out = manifest_batch(table.to_batches()[0], cfg)
    assert pa.Table.from_batches([out]).equals(build_manifest(table, cfg).combine_chunks())
    assert manifest_batch(pa.RecordBatch.from_pylist([], schema=table.schema), cfg).num_rows == 0


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "configs").glob("phase4a*.yaml")))
def test_shipped_configs_load_and_fill_z_s(hosts_uri, name):
    cfg = load_config(Phase4aConfig, str(ROOT / "configs" / name))
    m = build_manifest(hosts_uri[1], cfg.manifest)
    z_s, z_l = m.column("z_s").to_numpy(), m.column("z_l").to_numpy()
    assert m.num_rows > 0 and m.column("z_s").null_count == 0 and (z_s > z_l + 0.2 - 1e-6).all()
    # issue 14: every shipped config uses the project's source colours and draws one host role
    assert source_colour_summary(cfg.manifest)["standard"]
    role = "train" if cfg.manifest.design == "random" else "selection"
    assert cfg.manifest.host_roles.draw == role and set(m.column("host_role").to_pylist()) == {role}


@pytest.mark.spark
def test_partitioning_does_not_change_the_manifest(spark, hosts_uri, tmp_path):
    uri, _ = hosts_uri
    tables = []
    for parts in (1, 4):
        cfg = Phase4aConfig(hosts_uri=uri, partitions=parts,
                            manifest=ManifestConfig(design="grid", grid_preset="grid_small", injections_per_host=3))
        out = str(tmp_path / f"m{parts}")
        summary = _body(spark, cfg, Namespace(output=out))
        n_in = host_plan(hosts_uri[1], cfg.manifest).column("host_status").to_pylist().count("ok")
        assert summary["rows_out"] == summary["distinct_task_ids"] == 3 * n_in and n_in > 50
        assert summary["hosts_by_status"] == {"ok": n_in, "outside_z_l_bins": 60 - n_in}
        assert sum(b["n_hosts"] for b in summary["hosts_per_z_l_bin"]) == n_in
        assert all(b["z_l_lo"] <= b["mean_z_l"] < b["z_l_hi"] for b in summary["hosts_per_z_l_bin"])
        purity = summary["z_l_bin_purity"]
        assert sum(b["n_hosts"] for b in purity) == n_in and all(0.3 < b["expected_purity"] < 1 for b in purity)
        assert summary["z_l_source"] == ["photoz:lrg_template_v1"] and summary["source_colours"]["warning"] is None
        tables.append(storage.read_parquet(out).sort_by("task_id"))
    assert tables[0].column("z_s").null_count == 0  # z_s is part of what must not depend on partitioning
    assert tables[0].equals(tables[1])
    validate_table(tables[0], "injection_manifest")


@pytest.mark.spark
def test_summary_shows_the_host_split_and_a_chosen_nonstandard_colour_prior(spark, hosts_uri, tmp_path):
    uri, _ = hosts_uri
    cfg = Phase4aConfig(hosts_uri=uri, partitions=2, manifest=ManifestConfig(
        prior_preset="legacy_final", nonstandard_source_colours=True, host_roles={"draw": "selection"}))
    summary = _body(spark, cfg, Namespace(output=str(tmp_path / "m")))
    assert "differ from the project prior" in summary["source_colours"]["warning"]
    assert summary["host_roles"] == {"draw": "selection", "selection_fraction": 0.3, "salt": "dhs-host-role-v1"}
    by_status = summary["hosts_by_status"]
    assert sum(by_status.values()) == summary["hosts_in"] == 60
    assert by_status["ok"] == summary["hosts_by_role"]["selection"] == summary["rows_out"]
    assert by_status["not_drawn: host_role"] == summary["hosts_by_role"]["train"]


@pytest.mark.spark
def test_spark_submit_local(tmp_path, hosts_uri):
    uri, _ = hosts_uri
    out = tmp_path / "manifest"
    proc = subprocess.run(
        ["spark-submit", "--master", "local[2]", str(ROOT / "jobs" / "phase4a_manifest.py"), "--master", "local[2]",
         "--config", str(ROOT / "configs" / "phase4a_demo.yaml"), "--set", f"hosts_uri={uri}",
         "--set", "partitions=2", "--output", str(out)],
        capture_output=True, text=True, timeout=400, env={**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads([line for line in proc.stdout.splitlines() if line.startswith('{"')][-1])
    assert summary["hosts_in"] == 60 and summary["by_status"] == {"ok": summary["rows_out"]}
    table = storage.read_parquet(str(out))
    assert table.num_rows == summary["rows_out"] > 0 and storage.is_complete(str(out))
    assert set(table.column("source_mode").to_pylist()) == set(summary["by_source_mode"])
