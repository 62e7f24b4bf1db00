"""Files, blobs and Parquet at ``file://`` and ``s3://`` URIs through fsspec, written atomically.

Atomicity: a local file is written to a temporary sibling and renamed into place; an S3 object
is written by one PUT (or a multipart upload) and only appears when complete. Directory-shaped
datasets are marked complete by a ``_SUCCESS`` file written last (:func:`mark_complete`);
readers that resume work trust only marked datasets. Side files inside a dataset directory
(summaries, resolved configs) start with ``_`` so Spark and :func:`read_parquet` skip them.

S3 endpoint: boto's default credential chain; an alternative endpoint (e.g. a loopback test
server) comes from ``$DHS_S3_ENDPOINT_URL`` or ``$AWS_ENDPOINT_URL``. Nothing is hardcoded.
"""
from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import posixpath
import re
import shutil
import uuid
from typing import Any, BinaryIO, Iterator

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from dhs_gen.io.direct_file import DirectFile

SUCCESS_MARKER = "_SUCCESS"
SUMMARY_FILE = "_summary.json"

log = logging.getLogger(__name__)


class DatasetError(ValueError):
    """A dataset cannot be read or written safely (unfinished input, output that overlaps an
    input or is not this job's own); the message is one line saying what and where."""


def _s3_options() -> dict:
    endpoint = os.environ.get("DHS_S3_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL")
    return {"client_kwargs": {"endpoint_url": endpoint}} if endpoint else {}


def is_remote(uri: str) -> bool:
    """True for URIs with a non-local scheme (s3://, gs://, ...)."""
    return "://" in str(uri) and not str(uri).startswith("file:")


def local_path(uri: str) -> str:
    """Absolute local path of a plain path or a ``file://`` / ``file:`` URI (Spark writes both)."""
    uri = str(uri)
    for prefix in ("file://", "file:"):
        if uri.startswith(prefix):
            uri = uri[len(prefix):]
            break
    return os.path.abspath(uri)


def get_fs(uri: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """(filesystem, path-within-filesystem) for a URI or plain path."""
    uri = str(uri)
    if not is_remote(uri):
        return fsspec.filesystem("file"), local_path(uri)
    protocol = uri.split("://", 1)[0]
    options = _s3_options() if protocol in ("s3", "s3a") else {}
    fs = fsspec.filesystem("s3" if protocol == "s3a" else protocol, **options)
    return fs, fs._strip_protocol(uri)


def join_uri(base: str, *parts: str) -> str:
    """Join path parts onto a URI or path with '/'."""
    base = str(base)
    if is_remote(base) or base.startswith("file://"):
        return posixpath.join(base.rstrip("/"), *parts)
    return os.path.join(base, *parts)


def to_file_uri(uri: str) -> str:
    """A URI Spark accepts: remote URIs unchanged, local paths as file:// absolute URIs."""
    return uri if is_remote(uri) else "file://" + local_path(uri)


def exists(uri: str) -> bool:
    fs, path = get_fs(uri)
    return fs.exists(path)


def makedirs(uri: str) -> None:
    """Create a directory (no-op on object stores)."""
    fs, path = get_fs(uri)
    if not is_remote(uri):
        fs.makedirs(path, exist_ok=True)


def list_files(uri: str, suffix: str = "") -> list[str]:
    """Sorted URIs of files under ``uri`` (recursive) whose name ends with ``suffix``."""
    fs, path = get_fs(uri)
    if not fs.exists(path):
        return []
    found = sorted(p for p in fs.find(path) if p.endswith(suffix))
    if is_remote(uri):
        protocol = str(uri).split("://", 1)[0]
        return [f"{protocol}://{p}" for p in found]
    return found


def read_bytes(uri: str) -> bytes:
    fs, path = get_fs(uri)
    with fs.open(path, "rb") as fh:
        return fh.read()


@contextlib.contextmanager
def open_atomic(uri: str, direct: bool = False) -> Iterator[BinaryIO]:
    """A binary file handle whose contents appear at ``uri`` only when the block exits cleanly:
    locally a temporary sibling, fsynced and renamed into place; on an object store a streamed
    (multipart) upload that is completed on exit and aborted on an error. Nothing is left behind
    on failure.

    ``direct``: a local file is written around the page cache
    (:class:`dhs_gen.io.direct_file.DirectFile`), for large outputs this process does not read back."""
    fs, path = get_fs(uri)
    if is_remote(uri):
        fh = fs.open(path, "wb")
        try:
            yield fh
        except BaseException:
            fh.discard()  # abort the upload; closed, so that garbage collection does not flush it
            fh.closed = True
            raise
        fh.close()
        return
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.tmp-{uuid.uuid4().hex}"
    try:
        with (DirectFile(tmp) if direct else open(tmp, "wb")) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_bytes(uri: str, data: bytes) -> None:
    """Write bytes atomically (temp file + rename locally; one upload on object stores)."""
    with open_atomic(uri) as fh:
        fh.write(data)


def read_text(uri: str) -> str:
    return read_bytes(uri).decode("utf-8")


def write_text(uri: str, text: str) -> None:
    write_bytes(uri, text.encode("utf-8"))


def read_json(uri: str) -> Any:
    return json.loads(read_text(uri))


def write_json(uri: str, obj: Any) -> None:
    """Write JSON (indented, keys sorted) atomically."""
    write_text(uri, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def _json_default(obj):
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


ROW_GROUP_BYTES = 64 * 2**20


def default_row_group_rows(table: pa.Table, target_bytes: int = ROW_GROUP_BYTES) -> int:
    """Rows per row group so that a row group holds about ``target_bytes`` of (uncompressed) data:
    readers (Spark's included) load a row group's column chunk whole, so a table of ~120 KB image
    blobs written as one row group would need its whole size in a reader's heap."""
    per_row = table.nbytes / max(table.num_rows, 1)
    return max(1, min(max(table.num_rows, 1), int(target_bytes // max(per_row, 1.0))))


def parquet_write_options(schema: pa.Schema, compression: str, blob_compression: str | None = None) -> dict:
    """pyarrow writer options (``compression``, ``use_dictionary``) for a table of ``schema``.

    Binary (blob) columns are never dictionary-encoded: every image blob is distinct, so the
    writer's dictionary attempt only costs CPU (it falls back to plain after the first page) and
    the reader then decodes a dictionary page too (docs/injection_jobs.md, Performance). Blob
    columns use ``blob_compression`` (default: ``compression``), every other column ``compression``."""
    blob_codec = compression if blob_compression is None else blob_compression
    buf = io.BytesIO()  # the schema's Parquet leaf columns (a nested field has several), as pyarrow names them
    pq.write_table(schema.empty_table(), buf)
    blob = {c.path: c.physical_type == "BYTE_ARRAY" and c.logical_type.type == "NONE"  # binary, not string
            for c in pq.ParquetFile(buf).schema}
    return {"compression": {path: blob_codec if is_blob else compression for path, is_blob in blob.items()},
            "use_dictionary": [path for path, is_blob in blob.items() if not is_blob]}


BLOB_COMPRESSION = "none"  # write_parquet's codec for binary columns: image blobs (noisy float32 pixels)


def write_parquet(table: pa.Table, uri: str, *, compression: str = "zstd", row_group_size: int | None = None) -> None:
    """Write one Parquet file atomically (row groups of ~64 MB unless ``row_group_size`` is given).

    ``compression`` applies to every column but the binary ones (image blobs), which are written
    plain: no dictionary and no codec (:data:`BLOB_COMPRESSION`) — on noisy float32 cutouts zstd
    saves a few percent of the file for several times the read CPU (bench rows
    ``phase4c.cutout_read.*``; docs/injection_jobs.md, Performance)."""
    buf = io.BytesIO()
    pq.write_table(table, buf, row_group_size=row_group_size or default_row_group_rows(table),
                   **parquet_write_options(table.schema, compression, BLOB_COMPRESSION))
    write_bytes(uri, buf.getvalue())


def _hidden(relpath: str) -> bool:
    return any(part.startswith((".", "_")) for part in relpath.split("/") if part)


def parquet_dataset(uri: str):
    """A ``pyarrow.dataset`` over a Parquet file or a (Hive-partitioned) directory.

    Side files and folders (names starting with ``_`` or ``.``) are ignored. Zero-byte files are
    skipped with a warning, as Spark 3.5 skips them (a killed writer or a failed upload can leave
    one; pyarrow alone would fail on it); tests/dhs_gen/test_storage.py checks both readers agree.
    """
    import pyarrow.dataset as ds

    fs, path = get_fs(uri)
    if not fs.isdir(path):
        return ds.dataset(path, filesystem=fs, format="parquet")
    files, empty = [], []
    for name, info in sorted(fs.find(path, detail=True).items()):
        rel = name[len(path.rstrip("/")):].lstrip("/")
        if info.get("type") == "directory" or _hidden(rel):
            continue
        (empty if int(info.get("size") or 0) == 0 else files).append(name)
    if empty:
        log.warning("%s: skipping %d zero-byte file(s), e.g. %s (Spark skips them too)", uri, len(empty),
                    empty[0][len(path.rstrip("/")):].lstrip("/"))
    return ds.dataset(files, filesystem=fs, format="parquet", partitioning="hive", partition_base_dir=path)


def read_parquet(uri: str, columns: list[str] | None = None, filters=None) -> pa.Table:
    """Read a Parquet file or a (Hive-partitioned) directory of Parquet files into a Table."""
    return parquet_dataset(uri).to_table(columns=columns, filter=filters)


def count_parquet_rows(uri: str) -> int:
    """Rows of a Parquet file or dataset directory, from the file footers alone (no data read)."""
    return parquet_dataset(uri).count_rows()


def mark_complete(dataset_uri: str, summary: dict | None = None) -> None:
    """Write the ``_SUCCESS`` marker (optionally holding a JSON summary) last."""
    write_json(join_uri(dataset_uri, SUCCESS_MARKER), summary or {})


def is_complete(dataset_uri: str) -> bool:
    """True when a dataset directory carries its ``_SUCCESS`` marker."""
    return exists(join_uri(dataset_uri, SUCCESS_MARKER))


def completion_record(dataset_uri: str) -> dict | None:
    """The JSON held by a dataset's ``_SUCCESS`` marker ({} for Spark's empty marker), None if absent."""
    marker = join_uri(dataset_uri, SUCCESS_MARKER)
    if not exists(marker):
        return None
    text = read_text(marker).strip()
    try:
        record = json.loads(text) if text else {}
    except ValueError:
        return {}
    return record if isinstance(record, dict) else {}


def require_complete(dataset_uri: str, *, what: str = "input", allow_partial: bool = False) -> dict | None:
    """Refuse an unfinished pipeline dataset; returns its completion record.

    A directory dataset must carry its ``_SUCCESS`` marker; where the marker's summary states
    ``rows_out`` and the dataset holds Parquet, the rows on storage (counted from the footers)
    must match it. A single file (written atomically) is complete by construction.
    ``allow_partial`` (the jobs' ``--allow-partial``) logs a warning instead of refusing.
    Raises :class:`DatasetError` with a one-line message.
    """
    fs, path = get_fs(dataset_uri)
    if not fs.exists(path):
        raise DatasetError(f"{what} {dataset_uri} does not exist")
    if not fs.isdir(path):
        return None
    record = completion_record(dataset_uri)
    problem = None
    if record is None:
        problem = "has no _SUCCESS marker (an unfinished or killed run?)"
    elif isinstance(record.get("rows_out"), int) and list_files(dataset_uri, ".parquet"):
        found = count_parquet_rows(dataset_uri)
        if found != record["rows_out"]:
            problem = f"holds {found} rows but its _SUCCESS summary says rows_out={record['rows_out']}"
    if problem is None:
        return record
    if allow_partial:
        log.warning("%s %s %s; read anyway (--allow-partial)", what, dataset_uri, problem)
        return record
    raise DatasetError(f"{what} {dataset_uri} {problem}; rerun the job that writes it, "
                       "or pass --allow-partial to read it as it is")


def incomplete_datasets(relpaths) -> list[str]:
    """Folders (relative, '' = the root) holding Parquet files without a ``_SUCCESS`` marker in
    the folder or an ancestor: the unfinished datasets of a listed tree (e.g. an S3 prefix)."""
    marked = {posixpath.dirname(p) for p in relpaths if posixpath.basename(p) == SUCCESS_MARKER}
    bad = set()
    for p in relpaths:
        if not p.endswith(".parquet") or _hidden(p):
            continue
        folder = posixpath.dirname(p)
        chain = [folder]
        while folder:
            folder = posixpath.dirname(folder)
            chain.append(folder)
        if not marked.intersection(chain):
            bad.add(posixpath.dirname(p))
    return sorted(bad)


# ---------------------------------------------------------------------------- job outputs

def _canonical(uri: str) -> str:
    uri = str(uri)
    if is_remote(uri):
        scheme, rest = uri.split("://", 1)
        return ("s3" if scheme == "s3a" else scheme) + "://" + re.sub("/+", "/", rest).rstrip("/")
    return os.path.realpath(local_path(uri))


def overlap(output: str, other: str) -> str | None:
    """How ``output`` overlaps ``other``: "is", "contains", "is inside", or None (disjoint)."""
    a, b = _canonical(output), _canonical(other)
    if a == b:
        return "is"
    sep = "/" if is_remote(output) or "://" in a else os.sep
    if b.startswith(a.rstrip(sep) + sep):
        return "contains"
    if a.startswith(b.rstrip(sep) + sep):
        return "is inside"
    return None


def dataset_job(dataset_uri: str) -> str | None:
    """The job that wrote a dataset, from its ``_summary.json`` (None when it has none)."""
    summary = join_uri(dataset_uri, SUMMARY_FILE)
    if not exists(summary):
        return None
    try:
        return read_json(summary).get("job")
    except (ValueError, AttributeError):
        return None


def _entries(uri: str) -> list[str]:
    fs, path = get_fs(uri)
    return [posixpath.basename(p.rstrip("/")) for p in fs.ls(path, detail=False)]


def check_output(output: str, job: str, inputs: dict | None = None, own_entries: str | None = None) -> None:
    """Refuse an output that cannot be replaced safely, before any work is done.

    ``inputs``: {role: uri}; the output must not be, contain or lie inside any of them. An existing
    output must be a file-free folder, or this job's own earlier output (its ``_summary.json``
    names ``job``), or hold only entries matching the regex ``own_entries`` (a resumable job's
    layout, e.g. ``run=N``). Raises :class:`DatasetError`.
    """
    for role, uri in (inputs or {}).items():
        if uri and (how := overlap(output, uri)):
            raise DatasetError(f"{job}: the output {output} {how} the input {role} {uri}; "
                               "choose a separate output folder")
    fs, path = get_fs(output)
    if not fs.exists(path):
        return
    if not fs.isdir(path):
        raise DatasetError(f"{job}: the output {output} is a file; give a folder")
    entries = [e for e in _entries(output) if e not in (SUCCESS_MARKER, SUMMARY_FILE)]
    if not entries or dataset_job(output) == job:
        return
    if own_entries and all(re.fullmatch(own_entries, e) or e.startswith("_") for e in entries):
        return
    raise DatasetError(f"{job}: the output {output} exists and is not an earlier output of {job} "
                       f"(no _summary.json from {job}); refusing to replace it: remove it yourself "
                       "or choose another output")


def _sibling(output: str, tag: str) -> str:
    """A hidden sibling of ``output`` (Spark and pyarrow skip names starting with '.')."""
    output = str(output).rstrip("/")
    parent, name = (posixpath if is_remote(output) else os.path).split(output)
    return join_uri(parent, f".{name}.dhs-{tag}-{uuid.uuid4().hex[:12]}") if tag else join_uri(parent, f".{name}.dhs-")


def _leftovers(output: str, tag: str) -> list[str]:
    prefix = posixpath.basename(_sibling(output, ""))
    parent = posixpath.dirname(str(output).rstrip("/")) if is_remote(output) else os.path.dirname(
        local_path(output).rstrip(os.sep))
    fs, ppath = get_fs(parent)
    if not fs.exists(ppath):
        return []
    return [join_uri(parent, e) for e in sorted(_entries(parent)) if e.startswith(prefix + tag + "-")]


def staging_output(output: str) -> str:
    """A fresh hidden folder beside ``output`` for a job to write into (see :func:`swap_into_place`).

    Leftovers of killed runs (staging folders beside ``output``) are removed; an output lost
    between the two renames of an interrupted swap is restored from its replaced copy."""
    for stale in _leftovers(output, "staging"):
        log.warning("removing the staging folder of an earlier, unfinished run: %s", stale)
        remove(stale)
    replaced = _leftovers(output, "replaced")
    if replaced and not exists(output):
        _move(replaced[-1], output)
        replaced = replaced[:-1]
    for old in replaced:
        remove(old)
    staging = _sibling(output, "staging")
    makedirs(staging)
    return staging


def _move(src: str, dst: str) -> None:
    if is_remote(src):
        fs, spath = get_fs(src)
        fs.mv(spath, get_fs(dst)[1], recursive=True)
    else:
        os.replace(local_path(src), local_path(dst))


def swap_into_place(staging: str, output: str) -> None:
    """Replace ``output`` by the finished ``staging`` folder: locally two renames (the old output
    is moved aside first and deleted last), on an object store delete-then-copy of the new one."""
    if exists(output):
        old = _sibling(output, "replaced")
        _move(output, old)
        _move(staging, output)
        remove(old)
    else:
        if not is_remote(output):
            os.makedirs(os.path.dirname(local_path(output)) or ".", exist_ok=True)
        _move(staging, output)


def remove(uri: str) -> None:
    """Remove a file or directory tree if present."""
    fs, path = get_fs(uri)
    if not is_remote(uri) and os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif fs.exists(path):
        fs.rm(path, recursive=True)
