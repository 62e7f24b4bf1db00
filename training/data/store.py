"""Random-access reads of training shards: gather any rows of any view as float32 (k, C, H, W).

``ShardStore(index_path)`` opens the shards written by training.data.shards (npy memory maps,
Arrow IPC memory maps, or Parquet row groups read on demand) and the row metadata. Opening is
lazy and per process, so DataLoader workers each map the files themselves.
"""
from __future__ import annotations

import os
from collections import OrderedDict

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from training.data.shards import FORMAT, LAYOUTS, ShardError

PARQUET_CACHE_GROUPS = 8  # decoded row groups kept per process (parquet layout only)


class _GroupCache:
    """LRU of decoded Parquet row groups shared by all shards of a store (bounded memory)."""

    def __init__(self, max_groups: int):
        self.max_groups = max_groups
        self.items: OrderedDict = OrderedDict()

    def get(self, key, load):
        if key not in self.items:
            self.items[key] = load()
            while len(self.items) > self.max_groups:
                self.items.popitem(last=False)
        self.items.move_to_end(key)
        return self.items[key]


class _ParquetShard:
    """One Parquet shard of one view: row groups decoded on demand into the store's shared cache."""

    def __init__(self, path: str, view: str, shape: tuple, cache: _GroupCache):
        self.file = pq.ParquetFile(path)
        self.path, self.view, self.shape, self.cache = path, view, shape, cache
        md = self.file.metadata
        sizes = [md.row_group(i).num_rows for i in range(md.num_row_groups)]
        self.starts = np.concatenate([[0], np.cumsum(sizes)])

    def _load(self, g: int) -> np.ndarray:
        col = self.file.read_row_group(g, columns=[self.view]).column(0).combine_chunks()
        data = np.frombuffer(col.buffers()[2], dtype="<f4")
        start = int(np.frombuffer(col.buffers()[1], dtype=np.int32)[0]) // 4
        return data[start:start + len(col) * int(np.prod(self.shape))].reshape((len(col), *self.shape))

    def _group(self, g: int) -> np.ndarray:
        return self.cache.get((self.path, self.view, g), lambda: self._load(g))

    def __getitem__(self, idx: np.ndarray) -> np.ndarray:
        out = np.empty((len(idx), *self.shape), np.float32)
        groups = np.searchsorted(self.starts, idx, side="right") - 1
        for g in np.unique(groups):
            sel = groups == g
            out[sel] = self._group(int(g))[idx[sel] - self.starts[g]]
        return out


class ShardStore:
    """Rows of a shard set: ``meta`` (pyarrow Table, one row per stamp) and ``gather(view, rows)``."""

    def __init__(self, index_path: str):
        from dhs_gen.storage import local_path, read_json

        self.index_path = local_path(index_path)
        if os.path.isdir(self.index_path):
            self.index_path = os.path.join(self.index_path, "index.json")
        if not os.path.exists(self.index_path):
            raise ShardError(f"no shard index at {self.index_path} (run convert_to_shards first)")
        self.root = os.path.dirname(self.index_path)
        self.index = read_json(self.index_path)
        if self.index.get("format") != FORMAT or self.index.get("layout") not in LAYOUTS:
            raise ShardError(f"{self.index_path}: not a {FORMAT} index")
        self.layout = self.index["layout"]
        self.views = list(self.index["views"])
        self.shape = tuple(self.index["image_shape"])
        self.n_rows = int(self.index["n_rows"])
        sizes = [s["n_rows"] for s in self.index["shards"]]
        self.starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.meta = pq.read_table(os.path.join(self.root, self.index["meta"]["file"]))
        if self.meta.num_rows != self.n_rows or self.starts[-1] != self.n_rows:
            raise ShardError(f"{self.index_path}: meta has {self.meta.num_rows} rows, shards {self.starts[-1]}, "
                             f"index {self.n_rows}")
        self._arrays: dict = {}
        self._pid = None

    @property
    def data_hash(self) -> str:
        return self.index["data_hash"]

    def column(self, name: str) -> np.ndarray:
        """A metadata column as numpy (strings as object arrays)."""
        if name not in self.meta.column_names:
            raise KeyError(f"shard metadata has no column {name!r}; columns: {self.meta.column_names}")
        return self.meta.column(name).to_numpy(zero_copy_only=False)

    def _open(self) -> None:
        self._arrays = {v: [] for v in self.views}
        self._group_cache = _GroupCache(PARQUET_CACHE_GROUPS)
        for i, shard in enumerate(self.index["shards"]):
            stem = os.path.join(self.root, f"shard-{i:05d}")
            if self.layout == "npy":
                for v in self.views:
                    arr = np.load(f"{stem}.{v}.npy", mmap_mode="r", allow_pickle=False)
                    if arr.shape != (shard["n_rows"], *self.shape) or arr.dtype != np.float32:
                        raise ShardError(f"{stem}.{v}.npy: {arr.dtype} {arr.shape}, expected float32 "
                                         f"{(shard['n_rows'], *self.shape)}")
                    self._arrays[v].append(np.asarray(arr))  # plain ndarray view: no memmap overhead
            elif self.layout == "arrow":
                table = pa.ipc.open_file(pa.memory_map(f"{stem}.arrow", "r")).read_all()
                for v in self.views:
                    col = table.column(v).combine_chunks()
                    arr = np.frombuffer(col.buffers()[1], dtype="<f4")[: len(col) * int(np.prod(self.shape))]
                    self._arrays[v].append(arr.reshape((len(col), *self.shape)))
            else:
                for v in self.views:
                    self._arrays[v].append(_ParquetShard(f"{stem}.parquet", v, self.shape, self._group_cache))
        self._pid = os.getpid()

    def gather(self, view: str, rows: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Images of ``rows`` (global row numbers) of ``view`` as float32 (k, C, H, W), in order."""
        if self._pid != os.getpid():
            self._open()
        if view not in self._arrays:
            raise KeyError(f"view {view!r} not in shards {self.views}")
        rows = np.asarray(rows, dtype=np.int64)
        if out is None:
            out = np.empty((len(rows), *self.shape), np.float32)
        if len(rows) == 0:
            return out
        if rows.min() < 0 or rows.max() >= self.n_rows:
            raise IndexError(f"rows out of range 0..{self.n_rows - 1}")
        if np.all(rows[1:] >= rows[:-1]):  # sorted request (what the samplers send): no scatter copy
            shard_of = np.searchsorted(self.starts, rows, side="right") - 1
            bounds = np.r_[0, np.flatnonzero(np.diff(shard_of)) + 1, len(rows)]
            for a, b in zip(bounds[:-1], bounds[1:]):
                s = int(shard_of[a])
                self._take(view, s, rows[a:b] - self.starts[s], out[a:b])
            return out
        order = np.argsort(rows, kind="stable")
        out[order] = self.gather(view, rows[order])
        return out

    def _take(self, view: str, shard: int, local: np.ndarray, out: np.ndarray) -> None:
        arr = self._arrays[view][shard]
        if isinstance(arr, np.ndarray):
            np.take(arr, local, axis=0, out=out)
        else:
            out[...] = arr[local]
