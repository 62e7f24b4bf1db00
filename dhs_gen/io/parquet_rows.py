"""Rows of Parquet files fetched by address (file URI, row index), for jobs that pass row
addresses through Spark instead of the rows themselves (image blobs stay out of the JVM).

Addresses are what Spark reports as ``_metadata.file_path`` (a URI, percent-encoded: a space is
``%20``) and ``_metadata.row_index``; plain local paths are taken as they are.
Requests that arrive in (file, row) order read each row group once: the reader keeps the last
row group(s) it read (``cache_groups``, default 1: the memory of one row group, ~128 MB for a
Spark-written cutout dataset) and the footers of the files it opened.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import BinaryIO, List, Sequence, Tuple
from urllib.parse import unquote

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from dhs_gen import storage


class RowAddressError(ValueError):
    """A row address outside its file."""


class ParquetRowReader:
    """Fetch ``columns`` of Parquet rows by (file URI, row index); see the module docstring.

    ``required`` columns must be in every file read; the others are read where present."""

    def __init__(self, columns: Sequence[str], required: Sequence[str] = (), cache_groups: int = 1,
                 cache_files: int = 4):
        self.columns, self.required = list(columns), list(required)
        self.cache_groups, self.cache_files = cache_groups, cache_files
        self._files: OrderedDict[str, Tuple[pq.ParquetFile, np.ndarray, BinaryIO]] = OrderedDict()
        self._groups: OrderedDict[Tuple[str, int], pa.Table] = OrderedDict()

    def _file(self, uri: str) -> Tuple[pq.ParquetFile, np.ndarray]:
        """(ParquetFile, first row index of each row group + the total) of ``uri``; the
        ``cache_files`` most recently used files stay open."""
        if uri not in self._files:
            fs, path = storage.get_fs(unquote(uri) if ":" in uri.split("/", 1)[0] else uri)
            fh = fs.open(path, "rb")
            handle = pq.ParquetFile(fh)
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
        """
        rows = np.asarray(rows, dtype=np.int64)
        names = np.asarray(files, dtype=object)
        found = names != None  # noqa: E711 (elementwise)
        pieces, positions = [], []
        for uri in dict.fromkeys(names[found]):
            mine = np.flatnonzero(names == uri)
            starts = self._file(uri)[1]
            if (rows[mine] < 0).any() or (rows[mine] >= starts[-1]).any():
                raise RowAddressError(f"{uri}: row index outside [0, {starts[-1]})")
            groups = np.searchsorted(starts, rows[mine], side="right") - 1
            for g in np.unique(groups):
                sel = mine[groups == g]
                pieces.append(self._group(uri, int(g)).take(pa.array(rows[sel] - starts[g])))
                positions.append(sel)
        if not pieces:  # nothing addressed: nulls of the reader's columns, typed as null
            return pa.table({name: pa.nulls(len(files)) for name in self.columns}), found
        schema = pa.schema([f.with_nullable(True) for f in pieces[0].schema])
        table = pa.concat_tables([p.cast(schema) for p in pieces]).combine_chunks()
        index = np.zeros(len(files), dtype=np.int64)
        index[np.concatenate(positions)] = np.arange(table.num_rows)
        return table.take(pa.array(index, mask=~found)), found
