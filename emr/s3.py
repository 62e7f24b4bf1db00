"""boto3 S3 helpers for staging: URI parsing, checksummed parallel uploads with a manifest.

boto3 is imported inside functions. The endpoint comes from ``$DHS_S3_ENDPOINT_URL`` (or
``$AWS_ENDPOINT_URL``) when set, as in :mod:`dhs_gen.storage`; credentials from boto's chain.
"""
from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, Iterable, Tuple

MANIFEST_NAME = "_MANIFEST.json"
_CHUNK = 8 * 1024 * 1024


def parse_s3_uri(uri: str) -> Tuple[str, str]:
    """('bucket', 'key/prefix') of an s3:// or s3a:// URI; ValueError otherwise."""
    for scheme in ("s3://", "s3a://"):
        if str(uri).startswith(scheme):
            bucket, _, key = str(uri)[len(scheme):].partition("/")
            if bucket:
                return bucket, key
    raise ValueError(f"not an s3:// URI: {uri!r}")


def s3_client(region: str | None = None):
    """A thread-safe boto3 S3 client honouring the endpoint override."""
    import boto3
    from botocore.config import Config

    endpoint = os.environ.get("DHS_S3_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL")
    return boto3.client("s3", region_name=region, endpoint_url=endpoint,
                        config=Config(max_pool_connections=32, retries={"max_attempts": 8, "mode": "adaptive"}))


def sha256_file(path: str) -> str:
    """Hex SHA-256 of a local file, read in 8 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def upload_files(files: Iterable[Tuple[str, str]], dest_uri: str, *, client=None, workers: int = 8,
                 write_manifest: bool = True) -> Dict[str, dict]:
    """Upload ``(local_path, relative_key)`` pairs under ``dest_uri`` in parallel.

    Returns (and, unless disabled, writes last as ``<dest>/_MANIFEST.json``) the manifest
    ``{relative_key: {"size": bytes, "sha256": hex}}`` that :mod:`emr.sync` verifies against.
    """
    client = client or s3_client()
    bucket, prefix = parse_s3_uri(dest_uri)
    prefix = prefix.strip("/")
    pairs = list(files)
    missing = [src for src, _ in pairs if not os.path.isfile(src)]
    if missing:
        raise FileNotFoundError(f"cannot upload missing files: {missing}")

    def _one(pair: Tuple[str, str]) -> Tuple[str, dict]:
        src, rel = pair
        entry = {"size": os.path.getsize(src), "sha256": sha256_file(src)}
        key = f"{prefix}/{rel}" if prefix else rel
        client.upload_file(src, bucket, key, ExtraArgs={"Metadata": {"sha256": entry["sha256"]}})
        return rel, entry

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        manifest = dict(sorted(pool.map(_one, pairs)))
    if write_manifest:
        key = f"{prefix}/{MANIFEST_NAME}" if prefix else MANIFEST_NAME
        client.put_object(Bucket=bucket, Key=key, Body=json.dumps(manifest, indent=1, sort_keys=True).encode())
    return manifest


def upload_tree(local_dir: str, dest_uri: str, *, client=None, workers: int = 8) -> Dict[str, dict]:
    """Upload every file under ``local_dir`` (relative layout kept) with a sha256 manifest."""
    root = os.path.abspath(local_dir)
    if not os.path.isdir(root):
        raise FileNotFoundError(f"not a directory: {local_dir}")
    pairs = []
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root).replace(os.sep, "/")
            if rel != MANIFEST_NAME:
                pairs.append((path, rel))
    return upload_files(sorted(pairs, key=lambda p: p[1]), dest_uri, client=client, workers=workers)
