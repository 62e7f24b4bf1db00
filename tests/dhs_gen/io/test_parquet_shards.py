"""Executor-side Parquet shards: split by rows, atomic, counted, and committed per attempt."""
from __future__ import annotations

import pyarrow as pa
import pytest

from dhs_gen import storage
from dhs_gen.io.parquet_shards import ShardCommitError, ShardWriter, commit_shards

SCHEMA = pa.schema([("task_id", pa.string()), ("status", pa.string()), ("blob", pa.binary())])


def _table(n, start=0):
    return pa.table({"task_id": [f"t{i:04d}" for i in range(start, start + n)],
                     "status": ["ok" if i % 3 else "missing_cutout" for i in range(start, start + n)],
                     "blob": [bytes(64)] * n}, schema=SCHEMA)


def _write(uri, partition, attempt, tables, rows_per_file=4):
    writer = ShardWriter(uri, partition, attempt, SCHEMA, rows_per_file=rows_per_file, count_column="status")
    for table in tables:
        writer.write(table)
    return writer.close().to_pylist()


def test_shards_split_by_rows_and_report_counts(tmp_path):
    uri = str(tmp_path / "ds")
    reported = _write(uri, 3, 0, [_table(3), _table(6, 3)])
    assert [r["file"] for r in reported] == ["part-00003-a0-0000.parquet", "part-00003-a0-0001.parquet",
                                             "part-00003-a0-0002.parquet"]
    assert [r["rows"] for r in reported] == [4, 4, 1]
    summary = commit_shards(uri, reported, expected_rows=9)
    assert summary["counts"] == {"ok": 6, "missing_cutout": 3} and summary["files"] == 3
    back = storage.read_parquet(uri).sort_by("task_id")
    assert back.equals(_table(9))


def test_commit_keeps_only_the_successful_attempt(tmp_path):
    uri = str(tmp_path / "ds")
    _write(uri, 0, 0, [_table(6)])  # a failed first attempt that wrote its shards
    good = _write(uri, 0, 1, [_table(6)])
    commit_shards(uri, good, expected_rows=6)
    assert sorted(p.rsplit("/", 1)[1] for p in storage.list_files(uri, ".parquet")) == [r["file"] for r in good]
    assert storage.read_parquet(uri).num_rows == 6
    with pytest.raises(ShardCommitError, match="expected 7"):
        commit_shards(uri, good, expected_rows=7)
    storage.remove(storage.join_uri(uri, good[0]["file"]))
    with pytest.raises(ShardCommitError, match="not on storage"):
        commit_shards(uri, good)


def test_abort_leaves_no_file(tmp_path):
    uri = str(tmp_path / "ds")
    writer = ShardWriter(uri, 0, 0, SCHEMA, rows_per_file=100)
    writer.write(_table(5))
    writer.abort()
    assert storage.list_files(uri) == []


def test_shards_on_loopback_s3(s3_bucket):
    uri = f"{s3_bucket}/stamps"
    reported = _write(uri, 1, 0, [_table(5)])
    writer = ShardWriter(uri, 2, 0, SCHEMA, rows_per_file=100)
    writer.write(_table(5, 5))
    writer.abort()  # an aborted multipart upload leaves no object
    assert commit_shards(uri, reported, expected_rows=5)["files"] == 2
    assert storage.read_parquet(uri).sort_by("task_id").equals(_table(5))


@pytest.mark.parametrize("codec, parquet_codec", [("none", "UNCOMPRESSED"), ("zstd", "ZSTD")])
def test_blob_columns_are_not_dictionary_encoded(tmp_path, codec, parquet_codec):
    """Every blob is distinct: a dictionary attempt on them only costs the writer and the reader CPU.
    The other columns keep dictionaries; every column gets the configured codec."""
    import pyarrow.parquet as pq

    uri = str(tmp_path / "ds")
    writer = ShardWriter(uri, 0, 0, SCHEMA, compression=codec, rows_per_file=100)
    writer.write(_table(6))
    (shard,) = writer.close().to_pylist()
    chunks = {c.path_in_schema: c for c in (pq.ParquetFile(storage.join_uri(uri, shard["file"])).metadata
                                            .row_group(0).column(i) for i in range(len(SCHEMA)))}
    assert not chunks["blob"].has_dictionary_page and "RLE_DICTIONARY" not in chunks["blob"].encodings
    assert chunks["status"].has_dictionary_page
    assert {c.compression for c in chunks.values()} == {parquet_codec}
    assert storage.read_parquet(uri).equals(_table(6))


def test_shards_are_written_around_the_page_cache(tmp_path, monkeypatch):
    """Local shards go through open_atomic(direct=True) (dhs_gen.io.direct_file): a task's GBs of
    shards never pass through the page cache."""
    from dhs_gen import storage as storage_module

    calls = []
    real = storage_module.open_atomic

    def spy(uri, direct=False):
        calls.append(direct)
        return real(uri, direct=direct)

    monkeypatch.setattr(storage_module, "open_atomic", spy)
    reported = _write(str(tmp_path / "ds"), 0, 0, [_table(6)], rows_per_file=4)
    assert calls == [True] * len(reported) == [True, True]
