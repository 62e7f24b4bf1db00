"""Rows of Parquet files fetched by address (file URI, row index), for jobs that pass row
addresses through Spark instead of the rows themselves (image blobs stay out of the JVM).

Addresses are what Spark reports as ``_metadata.file_path`` (a URI, percent-encoded: a space is
``%20``) and ``_metadata.row_index``; plain local paths are taken as they are.
Requests that arrive in (file, row) order read each row group once: the reader keeps the last
row group(s) it read (``cache_groups``, default 1: the memory of one row group, ~128 MB for a
Spark-written cutout dataset) and the footers of the files it opened.

CPU (phase 4c's 122 KB cutout blobs; docs/injection_jobs.md, Performance): local files are
memory-mapped (one copy, page cache → Arrow buffer; a read through a Python file object copies
twice). The pipeline's writers replace files atomically and never rewrite one in place; a
mapped file truncated under the reader would fault it. Remote files are read through fsspec
with Arrow's coalesced pre-buffering. Rows consecutive in their row group come back as zero-copy
slices of it, so a blob is copied once between the page cache and the caller.
"""
from __future__ import annotations

from collections import OrderedDict
from functools import lru_cache
from typing import BinaryIO, List, Sequence, Tuple
from urllib.parse import unquote

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from dhs_gen import storage


@lru_cache(maxsize=1)
def _retaining_pool() -> pa.MemoryPool:
    """The Arrow memory pool local row groups are decoded into: pyarrow's jemalloc pool, set to
    keep the pages it frees (decay -1), so that each ~30-130 MB row group reuses the previous one's
    pages instead of page-faulting fresh ones (the default pool hands them back to the kernel:
    0.05 vs ~0.02 ms system CPU per 122 KB cutout row here). The default pool where pyarrow has
    no jemalloc. jemalloc is otherwise unused by the pipeline, so the setting touches nothing else."""
    try:
        pool = pa.jemalloc_memory_pool()
    except NotImplementedError:
        return pa.default_memory_pool()
    pa.jemalloc_set_decay_ms(-1)
    return pool


def _parquet_file_with_pool(path: str, pool: pa.MemoryPool) -> pq.ParquetFile:
    """A memory-mapped ParquetFile whose reads allocate from ``pool`` (a ParquetFile takes the
    default pool when it is opened; pyarrow has no argument for it)."""
    previous = pa.default_memory_pool()
    pa.set_memory_pool(pool)
    try:
        return pq.ParquetFile(path, memory_map=True)
    finally:
        pa.set_memory_pool(previous)


class RowAddressError(ValueError):
    """A row address outside its file."""


class ParquetRowReader:
    """Fetch ``columns`` of Parquet rows by (file URI, row index); see the module docstring.

    ``required`` columns must be in every file read; the others are read where present."""

    def __init__(self, columns: Sequence[str], required: Sequence[str] = (), cache_groups: int = 1,
                 cache_files: int = 4):
        self.columns, self.required = list(columns), list(required)
        self.cache_groups, self.cache_files = cache_groups, cache_files
        self._files: OrderedDict[str, Tuple[pq.ParquetFile, np.ndarray, BinaryIO | pq.ParquetFile]] = OrderedDict()
        self._groups: OrderedDict[Tuple[str, int], pa.Table] = OrderedDict()

    def _file(self, uri: str) -> Tuple[pq.ParquetFile, np.ndarray]:
        """(ParquetFile, first row index of each row group + the total) of ``uri``; the
        ``cache_files`` most recently used files stay open."""
        if uri not in self._files:
            target = unquote(uri) if ":" in uri.split("/", 1)[0] else uri
            if storage.is_remote(target):
                fs, path = storage.get_fs(target)
                fh = fs.open(path, "rb")
                handle = pq.ParquetFile(fh, pre_buffer=True)
            else:
                handle = _parquet_file_with_pool(storage.local_path(target), _retaining_pool())
                fh = handle
            missing = [c for c in self.required if c not in handle.schema_arrow.names]
            if missing:
                fh.close()
                raise RowAddressError(f"{uri}: no column(s) {missing}")
            counts = [handle.metadata.row_group(i).num_rows for i in range(handle.num_row_groups)]
            self._files[uri] = handle, np.concatenate([[0], np.cumsum(counts)]).astype(np.int64), fh
            while len(self._files) > self.cache_files:
                self._files.popitem(last=False)[1][2].close()
        self._files.move_to_end(uri)
        return self._files[uri][:2]

    def close(self) -> None:
        """Close every open file and drop the cached row groups."""
        while self._files:
            self._files.popitem()[1][2].close()
        self._groups.clear()

    def _group(self, uri: str, index: int) -> pa.Table:
        key = (uri, index)
        if key not in self._groups:
            handle = self._file(uri)[0]
            present = [c for c in self.columns if c in handle.schema_arrow.names]
            self._groups[key] = handle.read_row_group(index, columns=present)
            while len(self._groups) > self.cache_groups:
                self._groups.popitem(last=False)
        self._groups.move_to_end(key)
        return self._groups[key]

    def take(self, files: List[str | None], rows: np.ndarray) -> Tuple[pa.Table, np.ndarray]:
        """(table of ``columns`` for the addressed rows, bool mask of rows that had an address).

        Rows without an address (file None) come back as nulls; the output keeps the request order.
        Runs of rows consecutive in one row group are zero-copy slices of it (the table is chunked).
        """
        rows = np.asarray(rows, dtype=np.int64)
        names = np.asarray(files, dtype=object)
        found = names != None  # noqa: E711 (elementwise)
        groups: List[pa.Table] = []
        index = np.full(len(files), -1, dtype=np.int64)  # row in the concatenated groups; -1: none
        for uri in dict.fromkeys(names[found]):
            mine = np.flatnonzero(names == uri)
            starts = self._file(uri)[1]
            if (rows[mine] < 0).any() or (rows[mine] >= starts[-1]).any():
                raise RowAddressError(f"{uri}: row index outside [0, {starts[-1]})")
            in_group = np.searchsorted(starts, rows[mine], side="right") - 1
            for g in np.unique(in_group):
                sel = mine[in_group == g]
                index[sel] = sum(t.num_rows for t in groups) + rows[sel] - starts[g]
                groups.append(self._group(uri, int(g)))
        if not groups:  # nothing addressed: nulls of the reader's columns, typed as null
            return pa.table({name: pa.nulls(len(files)) for name in self.columns}), found
        return _gather(pa.concat_tables(groups, promote_options="default"), index), found


def _gather(table: pa.Table, index: np.ndarray) -> pa.Table:
    """Rows ``index`` of ``table`` (-1: a row of nulls): runs of consecutive rows as zero-copy
    slices, runs of -1 as null rows."""
    schema = pa.schema([f.with_nullable(True) for f in table.schema])
    table = table.cast(schema)
    prev, nxt = index[:-1], index[1:]
    cuts = np.flatnonzero(~(((prev >= 0) & (nxt == prev + 1)) | ((prev < 0) & (nxt < 0)))) + 1
    pieces = []
    for a, b in zip(np.r_[0, cuts], np.r_[cuts, len(index)]):
        if index[a] < 0:
            pieces.append(pa.table([pa.nulls(b - a, f.type) for f in schema], schema=schema))
        else:
            pieces.append(table.slice(index[a], b - a))
    return pa.concat_tables(pieces) if pieces else schema.empty_table()
