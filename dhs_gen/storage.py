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
import os
import posixpath
import uuid
from typing import Any, BinaryIO, Iterator

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

SUCCESS_MARKER = "_SUCCESS"


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
def open_atomic(uri: str) -> Iterator[BinaryIO]:
    """A binary file handle whose contents appear at ``uri`` only when the block exits cleanly:
    locally a temporary sibling, fsynced and renamed into place; on an object store a streamed
    (multipart) upload that is completed on exit and aborted on an error. Nothing is left behind
    on failure."""
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
        with open(tmp, "wb") as fh:
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


def write_parquet(table: pa.Table, uri: str, *, compression: str = "zstd", row_group_size: int | None = None) -> None:
    """Write one Parquet file atomically (row groups of ~64 MB unless ``row_group_size`` is given)."""
    buf = io.BytesIO()
    pq.write_table(table, buf, compression=compression, row_group_size=row_group_size or default_row_group_rows(table))
    write_bytes(uri, buf.getvalue())


def _parquet_dataset(uri: str):
    import pyarrow.dataset as ds

    fs, path = get_fs(uri)
    return ds.dataset(path, filesystem=fs, format="parquet", partitioning="hive",
                      exclude_invalid_files=False, ignore_prefixes=[".", "_"])


def read_parquet(uri: str, columns: list[str] | None = None, filters=None) -> pa.Table:
    """Read a Parquet file or a (Hive-partitioned) directory of Parquet files into a Table."""
    return _parquet_dataset(uri).to_table(columns=columns, filter=filters)


def count_parquet_rows(uri: str) -> int:
    """Rows of a Parquet file or dataset directory, from the file footers alone (no data read)."""
    return _parquet_dataset(uri).count_rows()


def mark_complete(dataset_uri: str, summary: dict | None = None) -> None:
    """Write the ``_SUCCESS`` marker (optionally holding a JSON summary) last."""
    write_json(join_uri(dataset_uri, SUCCESS_MARKER), summary or {})


def is_complete(dataset_uri: str) -> bool:
    """True when a dataset directory carries its ``_SUCCESS`` marker."""
    return exists(join_uri(dataset_uri, SUCCESS_MARKER))


def remove(uri: str) -> None:
    """Remove a file or directory tree if present."""
    fs, path = get_fs(uri)
    if fs.exists(path):
        fs.rm(path, recursive=True)
