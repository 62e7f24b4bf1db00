"""Stage a training dataset from S3 onto the GPU node's disk: copy and verify, nothing more.

``sync_from_s3("s3://bucket/dataset", "/data/dataset")`` (the copy half of ``dhs sync``) copies every object under the prefix in parallel;
each file is downloaded to a temporary sibling, verified, and renamed into place, so a killed
sync leaves only whole, verified files and a rerun copies just what is missing (files already
present with the right size are skipped; ``--verify-existing`` re-checks their checksums).
Verification: the SHA-256 in the dataset's ``_MANIFEST.json`` (written by ``dhs sync LOCAL s3://…``
uploads), else the MD5 ETag of single-part objects, always the size. ``_SYNC_COMPLETE.json`` is
written last. ``dhs sync`` (``dhs/sync.py``) then builds training shards from the copy; training
never streams from S3.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, NamedTuple

from emr.s3 import MANIFEST_NAME, parse_s3_uri, s3_client

COMPLETE_MARKER = "_SYNC_COMPLETE.json"
PART_SUFFIX = ".dhs-part"
_MD5_ETAG = re.compile(r"^[0-9a-f]{32}$")


class SyncError(RuntimeError):
    """Some files could not be copied or verified; rerunning resumes."""


class RemoteFile(NamedTuple):
    key: str
    size: int
    etag: str


def list_remote(client, src_uri: str) -> Dict[str, RemoteFile]:
    """``{relative path: RemoteFile}`` for every object under ``src_uri`` (directory markers skipped)."""
    bucket, prefix = parse_s3_uri(src_uri)
    prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
    found: Dict[str, RemoteFile] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            rel = obj["Key"][len(prefix):]
            if not rel or rel.endswith("/") or rel.endswith("_$folder$"):
                continue
            found[rel] = RemoteFile(obj["Key"], int(obj["Size"]), obj.get("ETag", "").strip('"'))
    return found


_STREAM_LIMIT = 64 << 20  # objects up to this size are streamed with one GET and hashed on the fly


def _digests(path: str) -> Dict[str, str]:
    sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(8 << 20), b""):
            sha.update(chunk)
            md5.update(chunk)
    return {"sha256": sha.hexdigest(), "md5": md5.hexdigest()}


def verify_file(path: str, remote: RemoteFile, expected_sha256: str | None, checksum: str = "auto",
                digests: Dict[str, str] | None = None) -> str | None:
    """None when ``path`` matches the remote object, else the reason it does not.

    ``digests`` ({"sha256", "md5"} of the file) skips re-reading it when already known.
    """
    size = os.path.getsize(path)
    if size != remote.size:
        return f"size {size} != {remote.size} bytes"
    if checksum == "size" or not (expected_sha256 or _MD5_ETAG.match(remote.etag)):
        return None  # multipart ETag without a manifest: size is all S3 gives us
    digests = digests or _digests(path)
    if expected_sha256:
        actual = digests["sha256"]
        return None if actual == expected_sha256 else f"sha256 {actual} != manifest {expected_sha256}"
    return None if digests["md5"] == remote.etag else f"md5 {digests['md5']} != ETag {remote.etag}"


def _stream(client, bucket: str, key: str, path: str) -> Dict[str, str]:
    """One GET written to ``path``, hashed while it streams."""
    sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    body = client.get_object(Bucket=bucket, Key=key)["Body"]
    with open(path, "wb") as fh:
        for chunk in iter(lambda: body.read(1 << 20), b""):
            sha.update(chunk)
            md5.update(chunk)
            fh.write(chunk)
    return {"sha256": sha.hexdigest(), "md5": md5.hexdigest()}


def _fetch(client, bucket: str, remote: RemoteFile, target: str, expected_sha256: str | None, checksum: str) -> int:
    """Download one object atomically (temp sibling, verify, rename); returns bytes copied.

    Small objects: one streamed GET hashed on the fly; large ones: boto3's multipart ranged download.
    """
    os.makedirs(os.path.dirname(target), exist_ok=True)
    tmp = f"{target}.{uuid.uuid4().hex[:8]}{PART_SUFFIX}"
    try:
        digests = None
        if remote.size <= _STREAM_LIMIT:
            digests = _stream(client, bucket, remote.key, tmp)
        else:
            client.download_file(bucket, remote.key, tmp)
        problem = verify_file(tmp, remote, expected_sha256, checksum, digests)
        if problem:
            raise SyncError(f"{remote.key}: downloaded copy failed verification: {problem}")
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return remote.size


def _remove_stale_parts(dest_dir: str) -> int:
    removed = 0
    for dirpath, _, names in os.walk(dest_dir):
        for name in names:
            if name.endswith(PART_SUFFIX):
                os.remove(os.path.join(dirpath, name))
                removed += 1
    return removed


def sync_from_s3(src_uri: str, dest_dir: str, *, workers: int = 16, verify_existing: bool = False,
                 checksum: str = "auto", client=None) -> dict:
    """Copy the dataset at ``src_uri`` to ``dest_dir``; returns a summary of counts and bytes.

    Raises SyncError (after every other file has been tried) when any file fails; rerun to resume.
    """
    if checksum not in ("auto", "size"):
        raise ValueError("checksum must be 'auto' or 'size'")
    started = time.time()
    client = client or s3_client()
    bucket, _ = parse_s3_uri(src_uri)
    remote = list_remote(client, src_uri)
    if not remote:
        raise SyncError(f"nothing to sync: no objects under {src_uri}")
    manifest: Dict[str, dict] = {}
    if MANIFEST_NAME in remote:
        body = client.get_object(Bucket=bucket, Key=remote[MANIFEST_NAME].key)["Body"].read()
        manifest = json.loads(body)
        lost = sorted(set(manifest) - set(remote))
        if lost:
            raise SyncError(f"{src_uri}: {len(lost)} file(s) in {MANIFEST_NAME} are missing from S3, e.g. {lost[:5]}")
    os.makedirs(dest_dir, exist_ok=True)
    marker = os.path.join(dest_dir, COMPLETE_MARKER)
    if os.path.exists(marker):
        os.remove(marker)
    stale = _remove_stale_parts(dest_dir)

    todo, skipped = [], 0
    for rel, obj in sorted(remote.items()):
        target = os.path.join(dest_dir, *rel.split("/"))
        expected = manifest.get(rel, {}).get("sha256")
        if os.path.isfile(target) and os.path.getsize(target) == obj.size and (
                not verify_existing or verify_file(target, obj, expected, checksum) is None):
            skipped += 1
        else:
            todo.append((rel, obj, target, expected))

    def _one(item):
        rel, obj, target, expected = item
        try:
            return rel, _fetch(client, bucket, obj, target, expected, checksum), None
        except Exception as exc:  # noqa: BLE001 - every failure is reported below, the rest keep going
            return rel, 0, f"{type(exc).__name__}: {exc}"

    from dhs_gen.log import progress

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        results = list(progress(pool.map(_one, todo), total=len(todo), desc="sync", unit="file"))
    failures = {rel: err for rel, _, err in results if err}
    if failures:
        shown = "; ".join(f"{rel}: {err}" for rel, err in sorted(failures.items())[:5])
        raise SyncError(f"{len(failures)} of {len(remote)} files failed ({shown}); rerun to resume")
    summary = {"source": src_uri, "dest": os.path.abspath(dest_dir), "files": len(remote),
               "copied": len(todo), "skipped": skipped, "stale_parts_removed": stale,
               "bytes_copied": sum(n for _, n, _ in results),
               "bytes_total": sum(o.size for o in remote.values()),
               "verified_by": "sha256 manifest" if manifest else ("size" if checksum == "size" else "etag/size"),
               "seconds": round(time.time() - started, 3)}
    with open(marker + PART_SUFFIX, "w", encoding="utf-8") as fh:
        json.dump(summary, fh, indent=1, sort_keys=True)
    os.replace(marker + PART_SUFFIX, marker)
    return summary
