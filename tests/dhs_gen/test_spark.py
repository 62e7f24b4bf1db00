"""The session builder and the Arrow batch map used by every job."""
from __future__ import annotations

import pyarrow as pa
import pytest

pytestmark = pytest.mark.spark


def test_session_settings_are_explicit(spark):
    conf = spark.sparkContext.getConf()
    assert spark.conf.get("spark.sql.ansi.enabled") == "false"
    assert conf.get("spark.driver.host") == "127.0.0.1"
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"


def test_map_arrow_batches_applies_numpy_function(spark):
    from dhs_gen.spark import map_arrow_batches

    schema = pa.schema([("id", pa.int64()), ("double", pa.int64())])

    def double(batch: pa.RecordBatch) -> pa.RecordBatch:
        ids = batch.column("id").to_numpy()
        return pa.RecordBatch.from_arrays([pa.array(ids), pa.array(ids * 2)], schema=schema)

    out = map_arrow_batches(spark.range(0, 5000, numPartitions=3), double, schema)
    rows = sorted((r.id, r.double) for r in out.collect())
    assert rows == [(i, 2 * i) for i in range(5000)]


def test_value_counts(spark):
    from dhs_gen.spark import value_counts

    df = spark.createDataFrame([("ok",), ("ok",), ("bad",), (None,)], "status string")
    assert value_counts(df, "status") == {"ok": 2, "bad": 1, None: 1}


def test_write_shards_refuses_a_folder_with_files(spark, tmp_path):
    from dhs_gen import storage
    from dhs_gen.spark import write_shards

    (tmp_path / "keep.txt").write_text("not a shard")
    with pytest.raises(storage.DatasetError, match="already holds files"):
        write_shards(spark.range(3), lambda batches: iter(()), str(tmp_path), pa.schema([("id", pa.int64())]))
    assert (tmp_path / "keep.txt").read_text() == "not a shard"
