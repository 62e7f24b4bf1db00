"""Storage: atomic local writes, Parquet round trips, and the same on a loopback S3 server."""
from __future__ import annotations

import os

import pyarrow as pa
import pytest

from dhs_gen import storage


def _table():
    return pa.table({"id": ["a", "b", "c"], "x": pa.array([1.0, 2.0, 3.0], pa.float32())})


def test_local_atomic_write_leaves_no_temp_files(tmp_path):
    target = tmp_path / "sub" / "blob.bin"
    storage.write_bytes(str(target), b"hello")
    assert target.read_bytes() == b"hello"
    assert os.listdir(target.parent) == ["blob.bin"]


def test_failed_local_write_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "blob.bin"
    storage.write_bytes(str(target), b"old")

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError, match="disk full"):
        storage.write_bytes(str(target), b"new")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["blob.bin"]


def test_parquet_json_and_markers_local(tmp_path):
    uri = "file://" + str(tmp_path / "ds")
    storage.write_parquet(_table(), storage.join_uri(uri, "part-0.parquet"))
    assert storage.read_parquet(uri).equals(_table())
    assert not storage.is_complete(uri)
    storage.mark_complete(uri, {"rows": 3})
    assert storage.is_complete(uri)
    assert storage.read_json(storage.join_uri(uri, "_SUCCESS")) == {"rows": 3}
    assert [os.path.basename(p) for p in storage.list_files(uri, ".parquet")] == ["part-0.parquet"]


def test_hive_partitions_are_columns(tmp_path):
    for split in ("train", "val"):
        storage.write_parquet(_table(), str(tmp_path / f"region_split={split}" / "p.parquet"))
    table = storage.read_parquet(str(tmp_path))
    assert table.num_rows == 6 and set(table.column("region_split").to_pylist()) == {"train", "val"}


def test_to_file_uri():
    assert storage.to_file_uri("s3://b/k") == "s3://b/k"
    assert storage.to_file_uri("rel/path").startswith("file:///")


def test_s3_round_trip_on_loopback_server(s3_bucket):
    uri = f"{s3_bucket}/run-1/table.parquet"
    storage.write_parquet(_table(), uri)
    assert storage.exists(uri)
    assert storage.read_parquet(uri).equals(_table())
    storage.write_json(f"{s3_bucket}/run-1/summary.json", {"n": 3})
    assert storage.read_json(f"{s3_bucket}/run-1/summary.json") == {"n": 3}
    assert sorted(storage.list_files(f"{s3_bucket}/run-1")) == [
        f"{s3_bucket}/run-1/summary.json", f"{s3_bucket}/run-1/table.parquet"]
    storage.remove(f"{s3_bucket}/run-1")
    assert storage.list_files(f"{s3_bucket}/run-1") == []


def test_blob_tables_are_written_in_bounded_row_groups(tmp_path):
    """A table of image blobs must not land in one giant row group (Spark reads a column chunk
    whole: a 6912-row cutout table in one row group ran a 4 GB driver out of heap)."""
    import pyarrow.parquet as pq

    blob = bytes(120_000)
    table = pa.table({"galaxy_id": [f"g{i}" for i in range(1200)], "cutout": [blob] * 1200})
    storage.write_parquet(table, str(tmp_path / "blobs.parquet"))
    meta = pq.ParquetFile(tmp_path / "blobs.parquet").metadata
    assert meta.num_rows == 1200
    assert meta.num_row_groups >= 2
    assert max(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups)) <= 80 * 2**20
    small = pa.table({"x": list(range(1000))})
    storage.write_parquet(small, str(tmp_path / "small.parquet"))
    assert pq.ParquetFile(tmp_path / "small.parquet").metadata.num_row_groups == 1


def test_blob_columns_are_written_plain_and_the_others_compressed(tmp_path):
    """Image blobs (binary columns, also nested) get neither a dictionary nor a codec; strings and
    numbers keep zstd and their dictionaries (docs/injection_jobs.md, Performance)."""
    import pyarrow.parquet as pq

    table = pa.table({"galaxy_id": ["g0", "g1", "g0"], "cutout": [bytes(range(200)) * 10, b"x" * 2000, b""],
                      "psf": [1.0, 1.5, 1.0], "extra": [{"blob": b"ab", "n": 1}] * 3})
    storage.write_parquet(table, str(tmp_path / "t.parquet"))
    meta = pq.ParquetFile(tmp_path / "t.parquet").metadata.row_group(0)
    chunks = {meta.column(i).path_in_schema: meta.column(i) for i in range(meta.num_columns)}
    for blob in ("cutout", "extra.blob"):
        assert chunks[blob].compression == "UNCOMPRESSED" and not chunks[blob].has_dictionary_page
    for other in ("galaxy_id", "psf", "extra.n"):
        assert chunks[other].compression == "ZSTD" and chunks[other].has_dictionary_page
    assert storage.read_parquet(str(tmp_path / "t.parquet")).equals(table)


def test_count_parquet_rows_reads_footers_of_every_part(tmp_path):
    for k, n in enumerate((5, 7)):
        storage.write_parquet(pa.table({"x": list(range(n))}), str(tmp_path / "ds" / f"part-{k}.parquet"))
    storage.mark_complete(str(tmp_path / "ds"), {"rows": 12})
    assert storage.count_parquet_rows(str(tmp_path / "ds")) == 12
    assert storage.count_parquet_rows("file://" + str(tmp_path / "ds" / "part-1.parquet")) == 7


# --------------------------------------------------------------------------- issue 20 (items 1, 2, 8)

@pytest.mark.spark
def test_zero_byte_parquet_files_are_skipped_like_spark(spark, tmp_path, caplog):
    storage.write_parquet(pa.table({"a": [1, 2]}), str(tmp_path / "d" / "split=train" / "part-0.parquet"))
    storage.write_parquet(pa.table({"a": [3]}), str(tmp_path / "d" / "split=val" / "part-0.parquet"))
    (tmp_path / "d" / "split=val" / "part-1.parquet").write_bytes(b"")  # a killed writer's leftover
    uri = str(tmp_path / "d")
    assert spark.read.parquet(storage.to_file_uri(uri)).count() == 3  # Spark 3.5 skips it
    with caplog.at_level("WARNING"):
        assert storage.count_parquet_rows(uri) == 3
        assert sorted(storage.read_parquet(uri).column("a").to_pylist()) == [1, 2, 3]
    assert "zero-byte" in caplog.text


def test_require_complete(tmp_path):
    uri = str(tmp_path / "d")
    storage.write_parquet(pa.table({"a": [1, 2, 3]}), storage.join_uri(uri, "part-0.parquet"))
    with pytest.raises(storage.DatasetError, match="no _SUCCESS marker"):
        storage.require_complete(uri, what="stamps")
    assert storage.require_complete(uri, allow_partial=True) is None
    storage.mark_complete(uri, {"rows_out": 6})
    with pytest.raises(storage.DatasetError, match="holds 3 rows but .* rows_out=6"):
        storage.require_complete(uri)
    storage.mark_complete(uri, {"rows_out": 3})
    assert storage.require_complete(uri) == {"rows_out": 3}
    with pytest.raises(storage.DatasetError, match="does not exist"):
        storage.require_complete(str(tmp_path / "typo"))
    assert storage.require_complete(storage.join_uri(uri, "part-0.parquet")) is None  # one atomic file


def test_incomplete_datasets_of_a_listing():
    listing = ["a/_SUCCESS", "a/split=x/p.parquet", "b/p.parquet", "c/_SUCCESS", "_tmp/p.parquet", "top.parquet"]
    assert storage.incomplete_datasets(listing) == ["", "b"]
    assert storage.incomplete_datasets(["_SUCCESS", "b/p.parquet"]) == []


def test_check_output_rules(tmp_path):
    (tmp_path / "in").mkdir()
    with pytest.raises(storage.DatasetError, match="is the input"):
        storage.check_output(str(tmp_path / "in"), "j", {"input": "file://" + str(tmp_path / "in") + "/"})
    assert storage.overlap("s3://b/x/y", "s3a://b/x") == "is inside"
    assert storage.overlap("/data/a", "/data/ab") is None
    storage.check_output(str(tmp_path / "new"), "j", {"input": str(tmp_path / "in")})  # absent: fine
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "run=0").mkdir()
    storage.check_output(str(tmp_path / "run"), "cutouts", own_entries=r"run=\d+")
    with pytest.raises(storage.DatasetError, match="is a file"):
        (tmp_path / "f").write_text("x")
        storage.check_output(str(tmp_path / "f"), "j")


def test_an_interrupted_swap_is_restored(tmp_path):
    out = str(tmp_path / "out")
    storage.write_parquet(pa.table({"a": [1]}), storage.join_uri(out, "part-0.parquet"))
    aside = tmp_path / ".out.dhs-replaced-0123456789ab"
    os.rename(out, aside)  # killed between the two renames of swap_into_place
    staging = storage.staging_output(out)
    assert storage.count_parquet_rows(out) == 1 and not aside.exists()
    storage.write_parquet(pa.table({"a": [1, 2]}), storage.join_uri(staging, "part-0.parquet"))
    storage.swap_into_place(staging, out)
    assert storage.count_parquet_rows(out) == 2 and sorted(os.listdir(tmp_path)) == ["out"]
