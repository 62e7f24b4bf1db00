"""Stage a training dataset from S3 onto the GPU node's disk: copy and verify, nothing more.

``sync_from_s3("s3://bucket/dataset", "/data/dataset")`` (the copy half of ``dhs sync``) copies every object under the prefix in parallel;
each file is downloaded to a temporary sibling, verified, and renamed into place, so a killed
sync leaves only whole, verified files and a rerun copies just what is missing.
Verification: the SHA-256 in the dataset's ``_MANIFEST.json`` (written by ``dhs sync LOCAL s3://…``
uploads), else the MD5 ETag of single-part objects, always the size.

Re-syncs: ``_SYNC_STATE.json`` records, for every file this sync wrote, the object's size and
ETag, the manifest SHA-256, the check it passed and the local file's size and mtime. A file is
skipped only when the object is unchanged (same ETag, same manifest SHA-256) and the local copy
untouched (same size and mtime); a file present but not recorded (or touched) is checksummed
against the object, and ``--verify-existing`` re-checksums every file. Files this sync wrote
whose object is gone from S3 are deleted (files it did not write are never touched). The
source must be complete: every folder holding Parquet needs a ``_SUCCESS`` in it or above it
(``allow_partial`` to copy anyway). The summary says which check each file passed
(``verified``) and ``verified_by`` names the weakest. ``_SYNC_COMPLETE.json`` is written last. ``dhs sync`` (``dhs/sync.py``) then builds training shards from the copy; training
never streams from S3.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, NamedTuple

from emr.s3 import MANIFEST_NAME, parse_s3_uri, s3_client

COMPLETE_MARKER = "_SYNC_COMPLETE.json"
STATE_FILE = "_SYNC_STATE.json"
_STRENGTH = ("sha256", "md5_etag", "size")  # strongest first
_VERIFIED_BY = {"sha256": "sha256 manifest", "md5_etag": "etag/size", "size": "size"}
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


def check_method(remote: RemoteFile, expected_sha256: str | None, checksum: str = "auto") -> str:
    """The check :func:`verify_file` applies: sha256 (manifest), md5_etag, or size only."""
    if checksum == "size":
        return "size"
    if expected_sha256:
        return "sha256"
    return "md5_etag" if _MD5_ETAG.match(remote.etag) else "size"


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


def _load_state(dest_dir: str) -> Dict[str, dict]:
    path = os.path.join(dest_dir, STATE_FILE)
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def _save_state(dest_dir: str, state: Dict[str, dict]) -> None:
    path = os.path.join(dest_dir, STATE_FILE)
    with open(path + PART_SUFFIX, "w", encoding="utf-8") as fh:
        json.dump(state, fh, indent=1, sort_keys=True)
    os.replace(path + PART_SUFFIX, path)


def _local_stamp(path: str) -> dict:
    st = os.stat(path)
    return {"local_size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _unchanged(entry: dict | None, obj: RemoteFile, expected: str | None, target: str) -> bool:
    """True when this sync wrote ``target`` from this very object and nobody touched it since."""
    return bool(entry) and entry.get("etag") == obj.etag and entry.get("size") == obj.size \
        and entry.get("sha256") == expected and os.path.isfile(target) and \
        {k: entry.get(k) for k in ("local_size", "mtime_ns")} == _local_stamp(target)


def _remove_vanished(dest_dir: str, state: Dict[str, dict], remote: Dict[str, RemoteFile]) -> list:
    """Delete the files this sync wrote whose object is gone from the source; returns their paths."""
    removed = []
    for rel in sorted(set(state) - set(remote)):
        target = os.path.join(dest_dir, *rel.split("/"))
        if os.path.isfile(target):
            os.remove(target)
            removed.append(rel)
        del state[rel]
    return removed


def sync_from_s3(src_uri: str, dest_dir: str, *, workers: int = 16, verify_existing: bool = False,
                 checksum: str = "auto", client=None, allow_partial: bool = False) -> dict:
    """Copy the dataset at ``src_uri`` to ``dest_dir``; returns a summary of counts and bytes.

    Raises SyncError (after every other file has been tried) when any file fails; rerun to resume.
    """
    from dhs_gen.storage import incomplete_datasets

    if checksum not in ("auto", "size"):
        raise ValueError("checksum must be 'auto' or 'size'")
    started = time.time()
    client = client or s3_client()
    bucket, _ = parse_s3_uri(src_uri)
    remote = list_remote(client, src_uri)
    if not remote:
        raise SyncError(f"nothing to sync: no objects under {src_uri}")
    unfinished = incomplete_datasets(list(remote))
    if unfinished and not allow_partial:
        where = ", ".join(f"{src_uri.rstrip('/')}/{d}".rstrip("/") for d in unfinished[:3])
        raise SyncError(f"{len(unfinished)} unfinished dataset folder(s) (Parquet without a _SUCCESS marker): "
                        f"{where}; rerun the job that writes them, or pass --allow-partial")
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
    state = _load_state(dest_dir)
    removed = _remove_vanished(dest_dir, state, remote)

    todo, skipped, rechecked = [], 0, 0
    for rel, obj in sorted(remote.items()):
        target = os.path.join(dest_dir, *rel.split("/"))
        expected = manifest.get(rel, {}).get("sha256")
        if not verify_existing and _unchanged(state.get(rel), obj, expected, target):
            skipped += 1
            continue
        if os.path.isfile(target):  # present but not known to match this object: checksum it
            rechecked += 1
            if verify_file(target, obj, expected, checksum) is None:
                state[rel] = {"size": obj.size, "etag": obj.etag, "sha256": expected,
                              "check": check_method(obj, expected, checksum), **_local_stamp(target)}
                skipped += 1
                continue
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
    for (rel, obj, target, expected), (_, _, err) in zip(todo, results):
        if not err:
            state[rel] = {"size": obj.size, "etag": obj.etag, "sha256": expected,
                          "check": check_method(obj, expected, checksum), **_local_stamp(target)}
    _save_state(dest_dir, state)  # before raising: what was copied and verified is recorded
    failures = {rel: err for rel, _, err in results if err}
    if failures:
        shown = "; ".join(f"{rel}: {err}" for rel, err in sorted(failures.items())[:5])
        raise SyncError(f"{len(failures)} of {len(remote)} files failed ({shown}); rerun to resume")
    checks = Counter(state[rel]["check"] for rel in remote)
    data_checks = Counter(state[rel]["check"] for rel in remote if rel != MANIFEST_NAME) or checks
    summary = {"source": src_uri, "dest": os.path.abspath(dest_dir), "files": len(remote),
               "copied": len(todo), "skipped": skipped, "checksummed_existing": rechecked,
               "removed_vanished": removed, "stale_parts_removed": stale,
               "unfinished_datasets": unfinished, "bytes_copied": sum(n for _, n, _ in results),
               "bytes_total": sum(o.size for o in remote.values()),
               "verified": {m: checks[m] for m in _STRENGTH if checks[m]},
               # the weakest check any data file passed (the manifest itself is checked by its ETag)
               "verified_by": _VERIFIED_BY[max(data_checks, key=_STRENGTH.index)],
               "seconds": round(time.time() - started, 3)}
    with open(marker + PART_SUFFIX, "w", encoding="utf-8") as fh:
        json.dump(summary, fh, indent=1, sort_keys=True)
    os.replace(marker + PART_SUFFIX, marker)
    return summary
