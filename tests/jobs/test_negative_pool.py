"""negative_pool job: the Spark pool (cuts, HEALPix-join exclusion) equals the local pool."""
from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from dhs_gen import storage
from dhs_gen.catalog.config import PoolConfig, SplitConfig
from dhs_gen.catalog.lenscat import load_lenscat
from dhs_gen.catalog.pool import build_pool
from dhs_gen.schemas import validate_table
from tests.dhs_gen.catalog.inputs import synthetic_tractor


@pytest.mark.spark
def test_negative_pool_job_matches_local(spark, tmp_path):
    from jobs.negative_pool import main

    lenses = load_lenscat()
    near = lenses[(lenses.ra.between(149.0, 151.0)) & (lenses.dec.between(1.0, 3.0))]
    assert len(near) > 3
    table = synthetic_tractor(2500, seed=9, at=(near["ra"].to_numpy(), near["dec"].to_numpy()))
    src = tmp_path / "tractor"
    src.mkdir()
    for i in range(4):
        pq.write_table(table.slice(i * 700, 700), src / f"part-{i}.parquet")
    out = tmp_path / "pool"
    assert main(["--tractor", str(src), "--output", str(out)]) == 0
    got = storage.read_parquet(str(out))
    local, counts = build_pool(table, lenses, PoolConfig(), SplitConfig())
    assert sorted(got.column("galaxy_id").to_pylist()) == sorted(local.column("galaxy_id").to_pylist())
    summary = storage.read_json(str(out / "_summary.json"))
    assert summary["status"] == counts and summary["rows_in"] == table.num_rows
    assert counts["near_known_lens"] > 50  # the rows placed 0.5" from lenses that pass the other cuts
    validate_table(got.select([f.name for f in local.schema]).cast(local.schema), "negatives_pool")
    assert set(summary["pool"]) == {"N1", "N2"}
