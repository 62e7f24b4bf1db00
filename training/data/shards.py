"""Training shards: decode stamps once, store raw float32 for the fastest random-access reads.

``convert_to_shards(src_uri, out_dir, layout="npy")`` reads any of

* a phase-4c stamps table (``stamp`` / ``ctrl_stamp`` / ``hardneg_stamp`` canonical blobs, id
  ``task_id``, split ``region_split``) or its legacy form (``stamp_npz`` / ``ctrl_stamp_npz``
  compressed npz, Hive-partitioned by ``region_split``, ``psfdepth_r`` a 5σ magnitude);
* a training manifest (``galaxy_id``, ``stamp_ref``, ``label``, ``sample_weight``, ``split``,
  ``tier``, ...) whose ``stamp_ref`` is ``<parquet uri>#<row>`` (row of a Parquet file holding a
  ``cutout``/``stamp``/``stamp_npz`` blob) or the URI of one stamp file (npz, FITS, canonical),
  relative refs resolved against the manifest's folder; an embedded ``cutout``/``stamp`` column
  is used directly;
* a folder of cutout npz files (``label`` and ``split`` given by the caller),

and writes ``out_dir/index.json`` (layout, image shape, views, shards with SHA-256, data hash),
``meta.parquet`` (one row per stamp: ``id``, ``label``, ``sample_weight``, ``split``, ``tier`` and
every scalar column of the source) and the image shards in one of three layouts:

* ``npy``: ``shard-NNNNN.<view>.npy`` float32 (N, C, H, W), memory-mapped by the reader (default:
  fastest in benchmarks/bench_training.py);
* ``arrow``: ``shard-NNNNN.arrow`` IPC file, one fixed-size-binary column per view;
* ``parquet``: ``shard-NNNNN.parquet``, one binary column per view, uncompressed row groups.

Rows whose stamp fails to decode, is missing, or (``nonfinite="drop"``) holds NaN/Inf pixels, or
whose ``status``/``cutout_ok`` says not ok, are skipped and counted by reason in the index.
Shards are local files (train from local disk, never stream from S3); the source may be s3://.
"""
from __future__ import annotations

import hashlib
import json
import os
import posixpath
import time
from collections import Counter
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

FORMAT = "dhs-shards-1"
INDEX = "index.json"
META = "meta.parquet"
LAYOUTS = ("npy", "arrow", "parquet")
DEFAULT_LAYOUT = "npy"
VIEW_COLUMNS = {  # view name -> source columns holding it, first match wins
    "stamp": ("stamp", "stamp_npz", "cutout"),
    "ctrl_stamp": ("ctrl_stamp", "ctrl_stamp_npz"),
    "hardneg_stamp": ("hardneg_stamp", "hardneg_stamp_npz"),
}
_BLOB_COLUMNS = {c for cols in VIEW_COLUMNS.values() for c in cols}


class ShardError(ValueError):
    """Shard conversion or reading failed; the message names the file or row."""


# --------------------------------------------------------------------------------------------
# reading sources into (meta table, {view: images}) chunks

def _source_kind(schema: pa.Schema) -> str:
    names = set(schema.names)
    if "stamp_ref" in names and not names & _BLOB_COLUMNS:
        return "manifest"
    if names & _BLOB_COLUMNS:
        return "table"
    raise ShardError(f"source has no stamp column ({sorted(_BLOB_COLUMNS)}) and no stamp_ref; columns: "
                     f"{sorted(names)[:20]}")


def _normalise_meta(table: pa.Table, legacy_depth: bool) -> pa.Table:
    """Scalar columns with the project's names: id, split, label, sample_weight, psfdepth_r_mag5."""
    from dhs_gen.io.legacy import legacy_psfdepth_to_mag5

    keep = [n for n in table.column_names if n not in _BLOB_COLUMNS and n != "stamp_ref"
            and not pa.types.is_binary(table.schema.field(n).type)
            and not pa.types.is_nested(table.schema.field(n).type)]
    t = table.select(keep)
    names = list(t.column_names)
    if "id" not in names:
        id_col = next((c for c in ("task_id", "galaxy_id") if c in names), None)
        if id_col is None:
            raise ShardError("source has no id column (task_id or galaxy_id)")
        t = t.append_column("id", t.column(id_col).cast(pa.string()))
    if "split" not in names and "region_split" in names:
        t = t.append_column("split", t.column("region_split").cast(pa.string()))
    if "psfdepth_r" in names and "psfdepth_r_mag5" not in names and legacy_depth:
        mag5 = legacy_psfdepth_to_mag5(t.column("psfdepth_r").to_numpy(zero_copy_only=False), "phase4")
        t = t.append_column("psfdepth_r_mag5", pa.array(mag5.astype(np.float32)))
    n = t.num_rows
    if "split" not in t.column_names:
        raise ShardError("source has no split (split or region_split column, or the split argument)")
    if "label" not in t.column_names:
        t = t.append_column("label", pa.array(_injection_labels(t)))
    if "sample_weight" not in t.column_names:
        t = t.append_column("sample_weight", pa.array(np.ones(n, np.float32)))
    if "tier" not in t.column_names:
        t = t.append_column("tier", pa.nulls(n, pa.string()))
    return t


def _injection_labels(t: pa.Table) -> np.ndarray:
    """Labels of a stamps table without a ``label`` column: 1 (injected lens) unless the row is a
    control (legacy ``is_control`` true, or ``lens_model``/``config_id`` "CONTROL")."""
    control = np.zeros(t.num_rows, bool)
    if "is_control" in t.column_names:
        control |= np.array([bool(v) for v in t.column("is_control").to_pylist()])
    for name in ("lens_model", "config_id"):
        if name in t.column_names:
            control |= np.array([str(v).upper() == "CONTROL" for v in t.column(name).to_pylist()])
    return (~control).astype(np.int8)


def _row_ok(table: pa.Table) -> tuple[np.ndarray, list]:
    """Per-row usability from ``status`` and ``cutout_ok`` columns: (mask, reasons)."""
    n = table.num_rows
    ok = np.ones(n, bool)
    reasons = [None] * n
    if "status" in table.column_names:
        status = table.column("status").to_pylist()
        for i, s in enumerate(status):
            if s is not None and s != "ok":
                ok[i], reasons[i] = False, f"status:{s.split(':')[0]}"
    if "cutout_ok" in table.column_names:
        flag = table.column("cutout_ok").to_pylist()
        for i, f in enumerate(flag):
            if ok[i] and not f:
                ok[i], reasons[i] = False, "cutout_not_ok"
    return ok, reasons


def _declared_sizes(table: pa.Table, stamp_size: int | None):
    """The stamp side every row must have [pixels]: ``stamp_size`` when given, else the
    dataset's declared per-row side (``stamp_size`` of stamps tables, ``size`` of cutout
    indexes), else None (the chunk's majority shape decides; see decode_stamp_column)."""
    if stamp_size:
        return int(stamp_size)
    for name in ("stamp_size", "size"):
        if name in table.column_names and pa.types.is_integer(table.schema.field(name).type):
            return table.column(name).to_pylist()
    return None


def _decode_views(blob_columns: dict, nonfinite: str, sizes=None) -> tuple[dict, np.ndarray, list, str]:
    """Decode every view column; a row is usable only when all its views decode."""
    from dhs_gen.io.legacy import decode_stamp_column

    images, bands, n = {}, None, None
    reasons: list = []
    for view, blobs in blob_columns.items():
        dec = decode_stamp_column(blobs, expected_size=sizes)
        n = len(dec.status)
        if not reasons:
            reasons = [None] * n
        for i, s in enumerate(dec.status):
            if s == "ok" or reasons[i] is not None:
                continue
            if s.startswith("nonfinite_pixels") and nonfinite != "drop":
                continue
            reasons[i] = f"{view}:{s.split(':')[0]}"
        if dec.images.ndim == 4 and dec.images.shape[1]:
            if bands is not None and dec.bands != bands:
                raise ShardError(f"view {view} has bands {dec.bands!r}, others {bands!r}")
            bands = dec.bands
        images[view] = dec.images
    ok = np.array([r is None for r in reasons], bool)
    if nonfinite == "zero":
        for arr in images.values():
            np.nan_to_num(arr, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    return images, ok, reasons, bands or ""


def _iter_table_chunks(src_uri: str, rows_per_chunk: int, split: str | None) -> Iterator[pa.Table]:
    from dhs_gen.storage import parquet_dataset

    for batch in parquet_dataset(src_uri).to_batches(batch_size=rows_per_chunk):
        table = pa.Table.from_batches([batch])
        if split is not None and "split" not in table.column_names and "region_split" not in table.column_names:
            table = table.append_column("split", pa.array([split] * table.num_rows, pa.string()))
        if table.num_rows:
            yield table


def _resolve_ref(ref: str, base: str) -> tuple[str, int | None]:
    uri, _, row = ref.partition("#")
    if "://" not in uri and not os.path.isabs(uri):
        uri = posixpath.join(base, uri) if "://" in base else os.path.join(base, uri)
    return uri, (int(row) if row else None)


def _manifest_blobs(table: pa.Table, base: str, cache: dict) -> pa.Array:
    """The stamp blob of every manifest row, reading each referenced Parquet file once."""
    from dhs_gen.storage import read_bytes, read_parquet

    refs = [_resolve_ref(r, base) for r in table.column("stamp_ref").to_pylist()]
    blobs: list = []
    for uri, row in refs:
        if row is None:
            try:
                blobs.append(read_bytes(uri))
            except FileNotFoundError:
                blobs.append(None)
            continue
        if uri not in cache:
            cache.clear()  # keep one referenced file in memory
            t = read_parquet(uri)
            col = next((c for c in VIEW_COLUMNS["stamp"] if c in t.column_names), None)
            if col is None:
                raise ShardError(f"{uri}: referenced file has no stamp column {VIEW_COLUMNS['stamp']}")
            cache[uri] = t.column(col)
        column = cache[uri]
        blobs.append(column[row].as_py() if 0 <= row < len(column) else None)
    return pa.array(blobs, pa.binary())


def _iter_cutout_dir(src_uri: str, rows_per_chunk: int, label: int | None, split: str | None) -> Iterator[pa.Table]:
    from dhs_gen.storage import list_files, read_bytes

    if label is None or split is None:
        raise ShardError("a cutout folder carries no labels or splits: pass label= and split=")
    files = list_files(src_uri, suffix=".npz")
    for start in range(0, len(files), rows_per_chunk):
        chunk = files[start:start + rows_per_chunk]
        ids = [posixpath.basename(f)[:-4] for f in chunk]
        yield pa.table({"galaxy_id": ids, "stamp": pa.array([read_bytes(f) for f in chunk], pa.binary()),
                        "label": pa.array(np.full(len(ids), label, np.int8)), "split": [split] * len(ids)})


_REF_CACHE: dict = {}  # per process: the last referenced Parquet file of a manifest


def _process_chunk(table: pa.Table, base: str, nonfinite: str, stamp_size: int | None = None) -> dict:
    """Decode one source chunk: kept rows' metadata and images, and skip counts by reason."""
    if _source_kind(table.schema) == "manifest":
        blob_cols = {"stamp": _manifest_blobs(table, base, _REF_CACHE)}
    else:
        blob_cols = {}
        for view, cands in VIEW_COLUMNS.items():
            col = next((c for c in cands if c in table.column_names), None)
            if col is not None:
                blob_cols[view] = table.column(col)
    meta = _normalise_meta(table, legacy_depth="stamp_npz" in table.column_names)
    ok_rows, row_reasons = _row_ok(table)
    images, ok_dec, dec_reasons, found_bands = _decode_views(blob_cols, nonfinite,
                                                             _declared_sizes(table, stamp_size))
    keep = ok_rows & ok_dec
    skipped = Counter(row_reasons[i] or dec_reasons[i] for i in np.flatnonzero(~keep))
    part = {"views": list(blob_cols), "skipped": skipped, "meta": None, "images": {}, "bands": found_bands}
    if keep.any():
        idx = np.flatnonzero(keep)
        part["meta"] = meta.take(pa.array(idx))
        part["images"] = {v: np.ascontiguousarray(a[idx]) for v, a in images.items()}
    return part


def _map_chunks(chunks: Iterator[pa.Table], base: str, nonfinite: str, workers: int,
                stamp_size: int | None = None) -> Iterator[dict]:
    """_process_chunk over the chunks in order; ``workers`` > 1 decodes in a process pool with a
    bounded number of chunks in flight (memory stays ~2 x workers chunks)."""
    if workers <= 1:
        for table in chunks:
            yield _process_chunk(table, base, nonfinite, stamp_size)
        return
    from collections import deque
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=workers) as pool:
        pending: deque = deque()
        for table in chunks:
            pending.append(pool.submit(_process_chunk, table, base, nonfinite, stamp_size))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


# --------------------------------------------------------------------------------------------
# writing shards

def _sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def _tmp(path: str) -> str:
    return f"{path}.tmp-{os.getpid()}"


def _write_shard(out_dir: str, shard_no: int, layout: str, images: dict, row_group_size: int) -> list[str]:
    stem = f"shard-{shard_no:05d}"
    written = []
    if layout == "npy":
        for view, arr in images.items():
            name = f"{stem}.{view}.npy"
            path = os.path.join(out_dir, name)
            with open(_tmp(path), "wb") as f:
                np.save(f, np.ascontiguousarray(arr, np.float32), allow_pickle=False)
            os.replace(_tmp(path), path)
            written.append(name)
        return written
    n = len(next(iter(images.values())))
    nbytes = int(np.prod(next(iter(images.values())).shape[1:])) * 4
    cols = {}
    for view, arr in images.items():
        buf = pa.py_buffer(np.ascontiguousarray(arr, "<f4").tobytes())
        cols[view] = pa.FixedSizeBinaryArray.from_buffers(pa.binary(nbytes), n, [None, buf])
    table = pa.table(cols)
    name = f"{stem}.{'arrow' if layout == 'arrow' else 'parquet'}"
    path = os.path.join(out_dir, name)
    if layout == "arrow":
        with pa.OSFile(_tmp(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
    else:
        table = table.cast(pa.schema([pa.field(v, pa.binary()) for v in images]))
        pq.write_table(table, _tmp(path), compression="none", row_group_size=row_group_size, use_dictionary=False)
    os.replace(_tmp(path), path)
    return [name]


class _ShardSink:
    """Accumulates decoded chunks and writes a shard every ``rows_per_shard`` rows."""

    def __init__(self, out_dir: str, layout: str, rows_per_shard: int, row_group_size: int):
        self.out_dir, self.layout, self.rows_per_shard, self.row_group_size = out_dir, layout, rows_per_shard, \
            row_group_size
        self.shards, self.metas, self.skipped = [], [], Counter()
        self.views, self.shape, self.bands = None, None, None
        self._meta, self._img, self._n = [], {}, 0

    def add(self, part: dict) -> None:
        self.skipped.update(part["skipped"])
        if self.views is None:
            self.views = part["views"]
        elif part["views"] != self.views:
            raise ShardError(f"views changed between chunks: {self.views} vs {part['views']}")
        if part["meta"] is None:
            return
        first = part["images"][self.views[0]]
        if self.shape is None:
            self.shape, self.bands = list(first.shape[1:]), part["bands"]
        elif list(first.shape[1:]) != self.shape or part["bands"] != self.bands:
            # a chunk whose stamps all differ from the shards' shape: its rows are skipped, counted
            self.skipped[f"{self.views[0]}:shape_mismatch"] += part["meta"].num_rows
            return
        self._meta.append(part["meta"])
        for v in self.views:
            self._img.setdefault(v, []).append(part["images"][v])
        self._n += part["meta"].num_rows
        if self._n >= self.rows_per_shard:
            self.flush()

    def flush(self) -> None:
        if not self._n:
            return
        imgs = {v: np.concatenate(a) for v, a in self._img.items()}
        names = _write_shard(self.out_dir, len(self.shards), self.layout, imgs, self.row_group_size)
        self.shards.append({"n_rows": self._n,
                            "files": {n: _sha256_file(os.path.join(self.out_dir, n)) for n in names}})
        self.metas.extend(self._meta)
        self._meta, self._img, self._n = [], {}, 0


def _check_source(src_uri: str, out_dir: str, allow_partial: bool) -> bool:
    """Validate the source before anything is written; True when it is a folder of npz cutouts.

    A Parquet dataset folder must be complete (``_SUCCESS``, row count; see
    :func:`dhs_gen.storage.require_complete`) unless ``allow_partial``; the shards may not be
    written into, around or inside the source."""
    from dhs_gen.storage import DatasetError, exists, overlap, require_complete

    if not exists(src_uri):
        raise ShardError(f"source not found: {src_uri}")
    if (how := overlap(out_dir, src_uri)):
        raise ShardError(f"the shards folder {out_dir} {how} the source {src_uri}; choose a separate folder")
    if not src_uri.endswith(".parquet") and _looks_like_cutout_dir(src_uri):
        return True
    try:
        require_complete(src_uri, what="source", allow_partial=allow_partial)
    except DatasetError as exc:
        raise ShardError(str(exc)) from None
    return False


def _check_out_dir(out_dir: str) -> None:
    """An existing shards folder is replaced only when it holds a shard set (and nothing else)."""
    if not os.path.isdir(out_dir):
        if os.path.exists(out_dir):
            raise ShardError(f"{out_dir} is a file; give a folder for the shards")
        return
    foreign = [n for n in os.listdir(out_dir) if not (n.startswith("shard-") or n in (INDEX, META))]
    if foreign:
        raise ShardError(f"{out_dir} holds files that are not training shards (e.g. {sorted(foreign)[0]}); "
                         "refusing to replace it: choose an empty or new folder")


def convert_to_shards(src_uri: str, out_dir: str, *, layout: str = DEFAULT_LAYOUT, rows_per_shard: int = 4096,
                      label: int | None = None, split: str | None = None, nonfinite: str = "drop",
                      row_group_size: int = 256, force: bool = False, workers: int = 1,
                      stamp_size: int | None = None, allow_partial: bool = False) -> str:
    """Convert a stamps table, training manifest or cutout folder into training shards.

    ``layout``: npy | arrow | parquet; ``label``/``split``: for a cutout folder (and ``split`` for
    a table without one); ``nonfinite``: drop | zero | keep rows with NaN/Inf pixels;
    ``workers``: decoding processes (chunks of ``rows_per_shard`` rows; output identical);
    ``stamp_size``: the stamp side [pixels] every row must have (default: the source's declared
    ``stamp_size``/``size`` column, else each chunk's majority shape); rows of another size are
    skipped as ``shape_mismatch``; ``allow_partial``: read a source folder without ``_SUCCESS``.
    An existing complete conversion of the same source and options is reused unless ``force``.
    The source is checked before anything is written; the shards are written into a staging
    folder beside ``out_dir`` and swapped into place, so a failure leaves the old set intact.
    Returns the path of ``index.json``.
    """
    from dhs_gen.storage import is_remote, local_path, read_json, staging_output, swap_into_place

    if layout not in LAYOUTS:
        raise ShardError(f"unknown layout {layout!r}; choose from {LAYOUTS}")
    if nonfinite not in ("drop", "zero", "keep"):
        raise ShardError(f"nonfinite must be drop, zero or keep, not {nonfinite!r}")
    if is_remote(out_dir):
        raise ShardError(f"shards are local files (sync first); got {out_dir}")
    out_dir = local_path(out_dir)
    index_path = os.path.join(out_dir, INDEX)
    options = {"layout": layout, "rows_per_shard": rows_per_shard, "label": label, "split": split,
               "nonfinite": nonfinite, "row_group_size": row_group_size, "stamp_size": stamp_size}
    is_dir_of_npz = _check_source(src_uri, out_dir, allow_partial)
    if not force and os.path.exists(index_path):
        previous = read_json(index_path)
        if previous.get("source") == str(src_uri) and previous.get("options") == options:
            return index_path
    _check_out_dir(out_dir)
    staging = staging_output(out_dir)
    try:
        _convert(src_uri, staging, is_dir_of_npz, options, workers)
    except BaseException:
        from dhs_gen.storage import remove

        remove(staging)
        raise
    swap_into_place(staging, out_dir)
    return index_path


def _convert(src_uri: str, out_dir: str, is_dir_of_npz: bool, options: dict, workers: int) -> None:
    """Decode the source chunk by chunk into shards, then write meta.parquet and index.json."""
    from dhs_gen.log import progress
    from dhs_gen.storage import write_json

    rows, split = options["rows_per_shard"], options["split"]
    chunks = (_iter_cutout_dir(src_uri, rows, options["label"], split) if is_dir_of_npz
              else _iter_table_chunks(src_uri, rows, split))
    base = src_uri if is_dir_of_npz else _dirname(src_uri)
    sink = _ShardSink(out_dir, options["layout"], rows, options["row_group_size"])
    for part in progress(_map_chunks(chunks, base, options["nonfinite"], workers, options["stamp_size"]),
                         desc="shards", unit="chunk"):
        sink.add(part)
    sink.flush()
    if not sink.shards:
        raise ShardError(f"{src_uri}: no usable rows (skipped: {dict(sink.skipped)})")
    meta_table = pa.concat_tables(sink.metas, promote_options="default")
    ids = meta_table.column("id")
    if len(pc.unique(ids)) != len(ids):
        raise ShardError(f"{src_uri}: duplicate ids in the source")
    pq.write_table(meta_table, _tmp(os.path.join(out_dir, META)))
    os.replace(_tmp(os.path.join(out_dir, META)), os.path.join(out_dir, META))
    index = {
        "format": FORMAT, "source": str(src_uri), "options": options, "layout": options["layout"],
        "n_rows": int(meta_table.num_rows), "image_shape": sink.shape, "bands": sink.bands, "views": sink.views,
        "shards": sink.shards, "meta": {"file": META, "sha256": _sha256_file(os.path.join(out_dir, META))},
        "skipped": dict(sink.skipped), "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    index["data_hash"] = data_hash(index)
    write_json(os.path.join(out_dir, INDEX), index)


def data_hash(index: dict) -> str:
    """SHA-256 identifying the shard contents (file checksums, shape, views), not paths or times."""
    content = {k: index[k] for k in ("format", "layout", "n_rows", "image_shape", "bands", "views", "shards", "meta")}
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def _dirname(uri: str) -> str:
    uri = str(uri).rstrip("/")
    if uri.endswith(".parquet"):
        return posixpath.dirname(uri) if "://" in uri else os.path.dirname(os.path.abspath(uri))
    return uri


def _looks_like_cutout_dir(uri: str) -> bool:
    from dhs_gen.storage import list_files

    files = list_files(uri)
    return bool(files) and not any(f.endswith(".parquet") for f in files) and any(f.endswith(".npz") for f in files)


def main(argv=None) -> int:
    """``dhs shards SRC OUT [--layout npy]``: convert and print the index summary as JSON."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="dhs shards", description=convert_to_shards.__doc__.split("\n\n")[0])
    parser.add_argument("src", help="stamps table, training manifest (Parquet) or cutout folder (file:// or s3://)")
    parser.add_argument("out_dir", help="local output folder")
    parser.add_argument("--layout", default=DEFAULT_LAYOUT, choices=LAYOUTS)
    parser.add_argument("--rows-per-shard", type=int, default=4096)
    parser.add_argument("--label", type=int, default=None, help="label of every row (cutout folders)")
    parser.add_argument("--split", default=None, help="split of every row (cutout folders / tables without one)")
    parser.add_argument("--nonfinite", default="drop", choices=("drop", "zero", "keep"))
    parser.add_argument("--force", action="store_true", help="convert again even if an index exists")
    parser.add_argument("--workers", type=int, default=1, help="decoding processes")
    parser.add_argument("--stamp-size", type=int, default=None,
                        help="stamp side [px] every row must have (default: the source's declared size)")
    parser.add_argument("--allow-partial", action="store_true", help="read a source without its _SUCCESS marker")
    args = parser.parse_args(argv)
    try:
        index_path = convert_to_shards(args.src, args.out_dir, layout=args.layout, rows_per_shard=args.rows_per_shard,
                                       label=args.label, split=args.split, nonfinite=args.nonfinite, force=args.force,
                                       workers=args.workers, stamp_size=args.stamp_size,
                                       allow_partial=args.allow_partial)
    except ShardError as exc:
        print(f"dhs shards: {exc}", file=sys.stderr)
        return 2
    with open(index_path) as f:
        index = json.load(f)
    print(json.dumps({"index": index_path, "n_rows": index["n_rows"], "layout": index["layout"],
                      "views": index["views"], "image_shape": index["image_shape"], "skipped": index["skipped"],
                      "data_hash": index["data_hash"]}))
    return 0


if __name__ == "__main__":
    import sys

    from dhs_gen.entrypoint import run_main

    sys.exit(run_main(main))
