"""Parquet shards written by Spark's Python workers, committed per successful task attempt.

Spark's own writer moves every row through the JVM (Arrow → rows → Parquet pages); for rows that
carry ~150 KB of image blobs that costs more than making them (docs/injection_jobs.md,
Performance). Jobs that write from the Python workers use:

* :class:`ShardWriter` (executor) — streams Arrow tables into
  ``{dataset}/part-{partition:05d}-a{attempt}-{k:04d}.parquet`` files of at most
  ``rows_per_file`` rows; each file appears atomically (:func:`dhs_gen.storage.open_atomic`) and
  is reported as a :data:`SHARD_SCHEMA` row (file name, rows, JSON counts of one column);
* :func:`commit_shards` (driver, after the Spark action that ran the writers, whose results come
  from exactly one successful attempt per partition) — keeps the reported files, deletes every
  other ``part-*`` file (failed or duplicate attempts) and checks the row count.

Speculative execution must be off (:func:`require_no_speculation`): an attempt still running after
the commit could add a file.
"""
from __future__ import annotations

import contextlib
import json
import posixpath
from collections import Counter
from typing import Dict, List

import pyarrow as pa
import pyarrow.parquet as pq

from dhs_gen import storage

SHARD_SCHEMA = pa.schema([("file", pa.string()), ("rows", pa.int64()), ("counts", pa.string())])
CODECS = {"lz4_raw": "lz4", "zstd": "zstd", "snappy": "snappy", "none": "none"}  # config name → pyarrow


class ShardCommitError(RuntimeError):
    """The shards on storage do not match what the successful task attempts reported."""


class ShardWriter:
    """Stream Arrow tables of one task attempt into Parquet shards (see the module docstring).

    ``count_column``: a string column whose value counts each shard reports (e.g. ``status``).
    """

    def __init__(self, dataset_uri: str, partition: int, attempt: int, schema: pa.Schema, *,
                 compression: str = "none", rows_per_file: int = 1024, count_column: str | None = None):
        if compression not in CODECS:
            raise ValueError(f"compression must be one of {sorted(CODECS)}, got {compression!r}")
        self.dataset_uri, self.schema = dataset_uri, schema
        self.prefix = f"part-{partition:05d}-a{attempt}"
        self.codec, self.rows_per_file, self.count_column = CODECS[compression], rows_per_file, count_column
        self.done: List[Dict] = []
        self._stack: contextlib.ExitStack | None = None
        self._writer: pq.ParquetWriter | None = None
        self._rows, self._counts = 0, Counter()

    def _open(self) -> None:
        name = f"{self.prefix}-{len(self.done):04d}.parquet"
        self._stack = contextlib.ExitStack()
        fh = self._stack.enter_context(storage.open_atomic(storage.join_uri(self.dataset_uri, name), direct=True))
        self._writer = pq.ParquetWriter(fh, self.schema, **storage.parquet_write_options(self.schema, self.codec))
        self._name, self._rows, self._counts = name, 0, Counter()

    def _finish(self) -> None:
        self._writer.close()
        self._stack.close()  # the file appears here
        self.done.append({"file": self._name, "rows": self._rows, "counts": json.dumps(dict(self._counts))})
        self._stack = self._writer = None

    def write(self, table: pa.Table) -> None:
        """Append rows (``table`` must have the writer's schema), starting new shards as needed."""
        start = 0
        while start < table.num_rows:
            if self._writer is None:
                self._open()
            piece = table.slice(start, self.rows_per_file - self._rows)
            self._writer.write_table(piece, row_group_size=storage.default_row_group_rows(piece))
            if self.count_column:
                self._counts.update(piece.column(self.count_column).to_pylist())
            self._rows += piece.num_rows
            start += piece.num_rows
            if self._rows >= self.rows_per_file:
                self._finish()

    def close(self) -> pa.RecordBatch:
        """Finish the open shard; the :data:`SHARD_SCHEMA` rows of every shard written."""
        if self._writer is not None:
            self._finish()
        return pa.RecordBatch.from_pylist(self.done, schema=SHARD_SCHEMA)

    def abort(self) -> None:
        """Drop the open shard (nothing of it appears)."""
        if self._stack is not None:
            with contextlib.suppress(Exception):
                self._writer.close()
            self._stack.__exit__(RuntimeError, RuntimeError("shard aborted"), None)
            self._stack = self._writer = None


def commit_shards(dataset_uri: str, reported: List[Dict], expected_rows: int | None = None) -> Dict:
    """Keep the ``reported`` shards (SHARD_SCHEMA dicts), delete other ``part-*`` files, check counts.

    Returns {"files", "rows", "counts"} (counts summed over the shards)."""
    names = {r["file"] for r in reported}
    on_storage = {posixpath.basename(p): p for p in storage.list_files(dataset_uri, ".parquet")
                  if posixpath.basename(p).startswith("part-")}
    missing = sorted(names - set(on_storage))
    if missing:
        raise ShardCommitError(f"{dataset_uri}: reported shards not on storage: {missing[:5]}")
    for name in sorted(set(on_storage) - names):
        storage.remove(storage.join_uri(dataset_uri, name))
    rows = sum(int(r["rows"]) for r in reported)
    if expected_rows is not None and rows != expected_rows:
        raise ShardCommitError(f"{dataset_uri}: shards hold {rows} rows, expected {expected_rows}")
    counts = Counter()
    for r in reported:
        counts.update(json.loads(r["counts"]))
    return {"files": len(names), "rows": rows, "counts": dict(counts)}


def require_no_speculation(spark) -> None:
    """Refuse to run executor-side writers with speculative execution on."""
    if spark.conf.get("spark.speculation", "false").lower() == "true":
        raise RuntimeError("this job writes its shards from the executors: run it with spark.speculation=false")
