"""splits job: relabel a dataset with only ra/dec; every pixel in one split, labels equal the local ones."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dhs_gen import storage
from dhs_gen.catalog.splits import healpix_index, pixel_split_conflicts, split_from_pixel


@pytest.mark.spark
def test_splits_job_from_ra_dec(spark, tmp_path):
    from jobs.splits import main

    rng = np.random.default_rng(5)
    src = tmp_path / "in"
    src.mkdir()
    for i in range(4):
        n = 500
        pq.write_table(pa.table({"task_id": [f"t{i}_{j}" for j in range(n)], "ra": rng.uniform(140, 160, n),
                                 "dec": rng.uniform(-5, 5, n)}), src / f"p{i}.parquet")
    storage.mark_complete(str(src))
    out = tmp_path / "out"
    assert main(["--input", str(src), "--output", str(out), "--id-column", "task_id"]) == 0
    got = storage.read_parquet(str(out)).to_pandas()
    assert len(got) == 2000
    pix = healpix_index(got["ra"], got["dec"])
    np.testing.assert_array_equal(got["healpix_128"].to_numpy(), pix)
    assert list(got["split"].astype(str)) == list(split_from_pixel(pix))
    assert len(pixel_split_conflicts(pix, got["split"].astype(str))) == 0
    assert storage.read_json(str(out / "_summary.json"))["splits"]["scheme"] == "legacy_sha256"
