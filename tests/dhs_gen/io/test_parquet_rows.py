"""Rows fetched by (file, row index): request order kept, misses as nulls, each row group read once,
and Spark's ``_metadata.row_index`` addresses the same rows."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dhs_gen.io.parquet_rows import ParquetRowReader, RowAddressError


@pytest.fixture()
def files(tmp_path):
    """Two files of 10 and 7 rows in row groups of 3; ids say where each row lives."""
    uris = []
    for k, n in enumerate((10, 7)):
        ids = [f"f{k}r{i}" for i in range(n)]
        table = pa.table({"galaxy_id": ids, "blob": [i.encode() * 100 for i in ids], "x": np.arange(n, dtype=np.float32)})
        path = tmp_path / "a dir%" / f"part-{k}.parquet"  # Spark percent-encodes such names
        path.parent.mkdir(exist_ok=True)
        pq.write_table(table, path, row_group_size=3)
        uris.append(path.as_uri())  # percent-encoded, as Spark reports it
    return uris


def test_rows_come_back_in_request_order_with_nulls_for_misses(files):
    reader = ParquetRowReader(["galaxy_id", "blob"])
    want = [(files[1], 6), (None, 0), (files[0], 0), (files[0], 9), (files[1], 2), (files[0], 4)]
    table, found = reader.take([f for f, _ in want], np.array([r for _, r in want]))
    expected = [None if f is None else f"f{files.index(f)}r{r}" for f, r in want]
    assert table.column("galaxy_id").to_pylist() == expected
    assert found.tolist() == [e is not None for e in expected]
    assert table.column("blob")[3].as_py() == b"f0r9" * 100
    reader.close()


def test_sorted_requests_read_each_row_group_once(files, monkeypatch):
    reads = []
    original = pq.ParquetFile.read_row_group

    def counting(self, i, *args, **kwargs):
        reads.append(i)
        return original(self, i, *args, **kwargs)

    monkeypatch.setattr(pq.ParquetFile, "read_row_group", counting)
    reader = ParquetRowReader(["galaxy_id"])
    rows = np.arange(10)
    for batch in np.array_split(rows, 4):  # batches that split row groups
        table, _ = reader.take([files[0]] * len(batch), batch)
        assert table.column("galaxy_id").to_pylist() == [f"f0r{i}" for i in batch]
    assert reads == [0, 1, 2, 3]


def test_all_missing_and_bad_addresses(files):
    reader = ParquetRowReader(["galaxy_id", "x"])
    table, found = reader.take([None, None], np.array([0, 0]))
    assert table.num_rows == 2 and table.column("galaxy_id").null_count == 2 and not found.any()
    with pytest.raises(RowAddressError, match="outside"):
        reader.take([files[1]], np.array([7]))


@pytest.mark.spark
def test_spark_row_index_addresses_the_same_rows(spark, files, tmp_path):
    from pyspark.sql import functions as F

    frame = spark.read.parquet(str(tmp_path / "a dir%")).select(
        "galaxy_id", F.col("_metadata.file_path").alias("file"), F.col("_metadata.row_index").alias("row"))
    rows = frame.collect()
    table, found = ParquetRowReader(["galaxy_id"]).take([r["file"] for r in rows], np.array([r["row"] for r in rows]))
    assert found.all() and table.column("galaxy_id").to_pylist() == [r["galaxy_id"] for r in rows]


def test_required_columns_and_optional_ones(files):
    table, _ = ParquetRowReader(["galaxy_id", "x", "not_there"]).take([files[0]], np.array([2]))
    assert table.column_names == ["galaxy_id", "x"] and table.column("x")[0].as_py() == 2.0
    with pytest.raises(RowAddressError, match="no column"):
        ParquetRowReader(["galaxy_id"], required=["cutout"]).take([files[0]], np.array([0]))


def test_consecutive_rows_are_not_copied_and_null_runs_are_nulls(files):
    """Blobs of rows consecutive in a row group are views of the row group read (no copy per
    request); gaps, file changes and runs of misses keep request order."""
    reader = ParquetRowReader(["galaxy_id", "blob"], cache_groups=8)  # keeps the row groups to compare
    want = [(files[0], 3), (files[0], 4), (files[0], 5), (None, 0), (None, 0), (files[0], 7), (files[1], 0),
            (files[1], 1), (files[0], 8)]
    table, found = reader.take([f for f, _ in want], np.array([r for _, r in want]))
    expected = [None if f is None else f"f{files.index(f)}r{r}" for f, r in want]
    assert table.column("galaxy_id").to_pylist() == expected and found.tolist() == [e is not None for e in expected]
    assert table.column("blob").to_pylist() == [None if e is None else e.encode() * 100 for e in expected]
    group = reader._group(files[0], 1).column("blob").chunk(0).buffers()[2]  # rows 3-5 of file 0
    run = table.column("blob").chunk(0)
    assert run.to_pylist() == [f"f0r{i}".encode() * 100 for i in (3, 4, 5)]
    assert group.address <= run.buffers()[2].address < group.address + group.size


def test_an_optional_column_absent_from_one_file_reads_as_nulls(tmp_path):
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    pq.write_table(pa.table({"galaxy_id": ["a0", "a1"], "psf": [1.0, 2.0]}), a)
    pq.write_table(pa.table({"galaxy_id": ["b0"]}), b)
    table, _ = ParquetRowReader(["galaxy_id", "psf"]).take([str(b), str(a), str(b)], np.array([0, 1, 0]))
    assert table.column("galaxy_id").to_pylist() == ["b0", "a1", "b0"]
    assert table.column("psf").to_pylist() == [None, 2.0, None]


def test_rows_from_s3_on_a_loopback_server(s3_bucket):
    """Remote files go through fsspec (local ones are memory-mapped): same rows, same order."""
    from dhs_gen import storage

    table = pa.table({"galaxy_id": [f"g{i}" for i in range(9)], "blob": [bytes([i]) * 50 for i in range(9)]})
    uri = f"{s3_bucket}/cutouts/part-0.parquet"
    storage.write_parquet(table, uri, row_group_size=4)
    got, found = ParquetRowReader(["galaxy_id", "blob"]).take([uri, None, uri, uri], np.array([8, 0, 1, 2]))
    assert got.column("galaxy_id").to_pylist() == ["g8", None, "g1", "g2"] and found.tolist() == [True, False, True, True]
    assert got.column("blob").to_pylist()[3] == bytes([2]) * 50


def test_local_row_groups_are_decoded_into_the_retaining_pool(files):
    """Local reads allocate from the pool that keeps freed pages (jemalloc, decay off) so each row
    group reuses the last one's pages; the process's default pool is left as it was."""
    from dhs_gen.io import parquet_rows

    pool, default = parquet_rows._retaining_pool(), pa.default_memory_pool()
    if pool.backend_name == default.backend_name:
        pytest.skip("this pyarrow has no jemalloc: the reader uses the default pool")
    reader = ParquetRowReader(["galaxy_id", "blob"])
    before = pool.bytes_allocated()
    table, _ = reader.take([files[0]] * 3, np.array([0, 1, 2]))
    assert pool.bytes_allocated() > before + 3 * 400  # the blobs live in the retaining pool
    assert pa.default_memory_pool().backend_name == default.backend_name
    assert table.column("blob")[2].as_py() == b"f0r2" * 100
    reader.close()
