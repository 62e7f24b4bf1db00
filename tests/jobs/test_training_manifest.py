"""training_manifest job: positives + sampled negatives (+ cutout index) -> the manifest the trainer reads."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute  # noqa: F401  (pa.compute)
import pytest

from dhs_gen import storage
from dhs_gen.catalog.config import PoolConfig, PositivesConfig, SamplingConfig, SplitConfig
from dhs_gen.catalog.pool import build_pool
from dhs_gen.catalog.positives import build_positives_local
from dhs_gen.catalog.sampling import sample_local
from dhs_gen.catalog.splits import split_from_pixel
from dhs_gen.schemas import conform, validate_table
from tests.dhs_gen.catalog.inputs import synthetic_tractor


def inputs(tmp_path):
    lenses = pd.DataFrame({"name": [f"L{i}" for i in range(6)], "ra": 149.5 + 0.1 * np.arange(6), "dec": [2.0] * 6,
                           "zlens": np.nan, "lens_type": "galaxy", "grading": ["confident", "probable"] * 3})
    tractor = synthetic_tractor(3000, seed=2, at=(lenses["ra"].to_numpy(), lenses["dec"].to_numpy()))
    positives = build_positives_local(tractor, PositivesConfig(), SplitConfig(), lenses=lenses)
    pool, _ = build_pool(tractor, pd.DataFrame({"name": [], "ra": [], "dec": []}), PoolConfig(), SplitConfig())
    sampled, _ = sample_local(pool.to_pandas(), SamplingConfig(target_total=600))
    # one positive also sits in the negative sample: the builder must drop it from the negatives
    pos_id = positives.filter(pa.compute.equal(positives.column("status"), "ok")).column("galaxy_id")[0].as_py()
    row = sampled.iloc[:1].assign(galaxy_id=pos_id)
    sampled = pd.concat([sampled, row], ignore_index=True)
    storage.write_parquet(positives, str(tmp_path / "pos" / "part-0.parquet"))
    storage.write_parquet(conform(pa.Table.from_pandas(sampled, preserve_index=False), "sampled_negatives"),
                          str(tmp_path / "neg" / "part-0.parquet"))
    ids = list(positives.column("galaxy_id").to_pylist()) + list(sampled["galaxy_id"])
    ids = [i for i in ids if i]
    cut = pa.table({"galaxy_id": ids, "cutout_ok": [k % 10 != 0 for k in range(len(ids))]})
    storage.write_parquet(cut, str(tmp_path / "cut" / "part-0.parquet"))
    for name in ("pos", "neg", "cut"):
        storage.mark_complete(str(tmp_path / name))
    return positives, sampled, len(row)


@pytest.mark.spark
def test_training_manifest_job(spark, tmp_path):
    from jobs.training_manifest import main

    positives, sampled, overlap = inputs(tmp_path)
    out = tmp_path / "manifest"
    rc = main(["--positives", str(tmp_path / "pos"), "--negatives", str(tmp_path / "neg"),
               "--cutouts", str(tmp_path / "cut"), "--output", str(out)])
    summary = storage.read_json(str(out / "_summary.json"))
    assert rc == 0, summary
    table = storage.read_parquet(str(out))
    validate_table(table, "training_manifest")
    m = table.to_pandas()
    assert summary["dropped"]["negatives_overlapping_positives"] == overlap
    assert summary["dropped"]["cutout_missing_or_bad"] > 0
    assert set(m["tier"]) == {"A", "B", "N1", "N2"} and set(m.loc[m.label == 1, "tier"]) == {"A", "B"}
    assert m["galaxy_id"].is_unique
    assert list(m["split"]) == list(split_from_pixel(m["healpix_128"].to_numpy()))
    assert m["stamp_ref"].iloc[0].endswith(f"#galaxy_id={m['galaxy_id'].iloc[0]}")
    assert (m.loc[m.tier == "B", "sample_weight"] == 0.5).all() and (m.loc[m.label == 0, "sample_weight"] == 1).all()
