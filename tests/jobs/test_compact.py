"""compact job: many small files -> few, rows and ids preserved, optional split relabel."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dhs_gen import storage
from dhs_gen.catalog.compaction import CompactionError, verify_same_rows
from dhs_gen.catalog.splits import split_from_pixel


def small_files(root, n_files=30, rows=200):
    rng = np.random.default_rng(0)
    root.mkdir()
    for i in range(n_files):
        pix = rng.integers(0, 5000, rows)
        pq.write_table(pa.table({"galaxy_id": [f"g{i}_{j}" for j in range(rows)], "healpix_128": pix,
                                 "split": split_from_pixel(pix).astype(str), "x": rng.normal(size=rows)}),
                       root / f"part-{i:03d}.parquet")
    storage.mark_complete(str(root))  # a finished pipeline dataset (jobs refuse unfinished inputs)
    return n_files * rows


@pytest.mark.spark
def test_compact_and_relabel(spark, tmp_path):
    from jobs.compact import main

    n = small_files(tmp_path / "in")
    out = tmp_path / "out"
    assert main(["--input", str(tmp_path / "in"), "--output", str(out), "--set", "compact.relabel=true",
                 "--set", "splits.fractions=[0.8,0.2]", "--set", "splits.names=[train,val]"]) == 0
    summary = storage.read_json(str(out / "_summary.json"))
    assert summary["rows_in"] == summary["rows_out"] == n and summary["ids_lost"] == summary["ids_added"] == 0
    assert summary["files_in"] == 30 and summary["files_out"] <= 2 * summary["planned_partitions"]
    assert set(summary["split_counts"]) == {"train", "val"} and summary["relabel_changed_rows"] > 0
    got = storage.read_parquet(str(out)).to_pandas()
    expected = split_from_pixel(got["healpix_128"].to_numpy(), fractions=(0.8, 0.2), names=("train", "val"))
    assert list(got["split"].astype(str)) == list(expected) and got["galaxy_id"].is_unique


@pytest.mark.spark
def test_verification_catches_lost_and_duplicated_rows(spark):
    before = spark.createDataFrame([("a",), ("b",), ("c",)], "galaxy_id string")
    with pytest.raises(CompactionError, match="ids_lost"):
        verify_same_rows(before, spark.createDataFrame([("a",), ("b",), ("b",)], "galaxy_id string"), "galaxy_id")
    assert verify_same_rows(before, before, "galaxy_id")["rows_out"] == 3
