"""Upload with a SHA-256 manifest and the resumable, verified sync, against the loopback S3 server."""
from __future__ import annotations

import hashlib
import json
import os
import sys
import types

import numpy as np
import pyarrow as pa
import pytest

from dhs import sync as dhs_sync
from dhs_gen.storage import write_parquet
from emr import sync as sync_mod
from emr.s3 import MANIFEST_NAME, parse_s3_uri, s3_client, upload_tree


def _dataset(root):
    """A small dataset: Parquet parts in a nested split folder plus a binary blob and a marker."""
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for part in range(3):
            table = pa.table({"id": np.arange(50) + 100 * part, "x": rng.normal(size=50).astype("float32")})
            write_parquet(table, os.path.join(root, f"split={split}", f"part-{part:05d}.parquet"))
    with open(os.path.join(root, "blob.bin"), "wb") as fh:
        fh.write(rng.bytes(300_000))
    with open(os.path.join(root, "_SUCCESS"), "w") as fh:
        fh.write("{}")
    return sorted(os.path.relpath(os.path.join(d, n), root) for d, _, ns in os.walk(root) for n in ns)


def _ALL(dest):  # noqa: N802 - files a sync keeps under dest, its own side files excepted
    return [n for _, _, ns in os.walk(dest) for n in ns
            if n not in (sync_mod.COMPLETE_MARKER, sync_mod.STATE_FILE)]


def _digest(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


@pytest.fixture
def uploaded(s3_bucket, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    files = _dataset(str(src))
    uri = f"{s3_bucket}/datasets/train_v1"
    manifest = upload_tree(str(src), uri, workers=4)
    return src, files, uri, manifest


def test_parse_s3_uri():
    assert parse_s3_uri("s3://b/k/x.parquet") == ("b", "k/x.parquet")
    assert parse_s3_uri("s3a://b") == ("b", "")
    with pytest.raises(ValueError):
        parse_s3_uri("/local/path")


def test_upload_writes_sha256_manifest(uploaded):
    src, files, uri, manifest = uploaded
    assert sorted(manifest) == files
    bucket, prefix = parse_s3_uri(uri)
    body = s3_client().get_object(Bucket=bucket, Key=f"{prefix}/{MANIFEST_NAME}")["Body"].read()
    assert json.loads(body) == manifest
    assert manifest["blob.bin"] == {"size": 300_000, "sha256": _digest(src / "blob.bin")}


def test_sync_copies_verifies_and_skips_on_rerun(uploaded, tmp_path):
    src, files, uri, _ = uploaded
    dest = tmp_path / "dest"
    first = sync_mod.sync_from_s3(uri, str(dest), workers=4)
    assert first["copied"] == len(files) + 1  # + the manifest itself
    assert first["verified_by"] == "sha256 manifest"
    for rel in files:
        assert _digest(dest / rel) == _digest(src / rel)
    assert (dest / sync_mod.COMPLETE_MARKER).exists()
    second = sync_mod.sync_from_s3(uri, str(dest), workers=4)
    assert second["copied"] == 0 and second["skipped"] == len(files) + 1


def test_interrupted_sync_resumes_without_recopying_or_losing(uploaded, tmp_path, monkeypatch):
    src, files, uri, _ = uploaded
    dest = tmp_path / "dest"
    real_fetch = sync_mod._fetch
    doomed = {"split=val/part-00001.parquet", "blob.bin"}

    def flaky(client, bucket, remote, target, expected, checksum):
        if any(remote.key.endswith(d) for d in doomed):
            # simulate a connection dropped mid-file: a partial temp file is left behind
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(f"{target}.dead{sync_mod.PART_SUFFIX}", "wb") as fh:
                fh.write(b"partial")
            raise ConnectionError("connection reset")
        return real_fetch(client, bucket, remote, target, expected, checksum)

    monkeypatch.setattr(sync_mod, "_fetch", flaky)
    with pytest.raises(sync_mod.SyncError, match="2 of .* files failed.*rerun to resume"):
        sync_mod.sync_from_s3(uri, str(dest), workers=4)
    for rel in files:
        assert (dest / rel).exists() == (rel not in doomed)
    assert not (dest / sync_mod.COMPLETE_MARKER).exists()

    copied = []

    def counting(client, bucket, remote, target, expected, checksum):
        copied.append(remote.key)
        return real_fetch(client, bucket, remote, target, expected, checksum)

    monkeypatch.setattr(sync_mod, "_fetch", counting)
    resumed = sync_mod.sync_from_s3(uri, str(dest), workers=4)
    assert sorted(k.split("train_v1/")[1] for k in copied) == sorted(doomed)
    assert resumed["copied"] == 2 and resumed["stale_parts_removed"] == 2
    for rel in files:
        assert _digest(dest / rel) == _digest(src / rel)
    leftovers = [n for _, _, ns in os.walk(dest) for n in ns if n.endswith(sync_mod.PART_SUFFIX)]
    assert leftovers == []


def test_verify_existing_replaces_a_corrupted_copy(uploaded, tmp_path):
    src, _, uri, _ = uploaded
    dest = tmp_path / "dest"
    sync_mod.sync_from_s3(uri, str(dest))
    data = bytearray((dest / "blob.bin").read_bytes())
    data[10] ^= 0xFF
    (dest / "blob.bin").write_bytes(bytes(data))  # same size, different content
    again = sync_mod.sync_from_s3(uri, str(dest))  # touched since the sync wrote it: checksummed
    assert again["copied"] == 1 and again["checksummed_existing"] == 1
    assert _digest(dest / "blob.bin") == _digest(src / "blob.bin")
    assert sync_mod.sync_from_s3(uri, str(dest), verify_existing=True)["checksummed_existing"] == len(_ALL(dest))


def test_corrupt_remote_object_fails_verification(uploaded, tmp_path):
    _, _, uri, _ = uploaded
    bucket, prefix = parse_s3_uri(uri)
    s3_client().put_object(Bucket=bucket, Key=f"{prefix}/blob.bin", Body=b"\0" * 300_000)
    with pytest.raises(sync_mod.SyncError, match="blob.bin.*sha256"):
        sync_mod.sync_from_s3(uri, str(tmp_path / "dest"))
    assert not (tmp_path / "dest" / "blob.bin").exists()


def test_file_lost_from_s3_is_reported(uploaded, tmp_path):
    _, _, uri, _ = uploaded
    bucket, prefix = parse_s3_uri(uri)
    s3_client().delete_object(Bucket=bucket, Key=f"{prefix}/split=train/part-00002.parquet")
    with pytest.raises(sync_mod.SyncError, match="missing from S3"):
        sync_mod.sync_from_s3(uri, str(tmp_path / "dest"))


def test_without_manifest_etag_md5_is_checked(s3_bucket, tmp_path):
    bucket, _ = parse_s3_uri(s3_bucket)
    client = s3_client()
    client.put_object(Bucket=bucket, Key="spark_out/part-0.parquet", Body=b"a" * 1000)
    client.put_object(Bucket=bucket, Key="spark_out/_SUCCESS", Body=b"")
    summary = sync_mod.sync_from_s3(f"{s3_bucket}/spark_out", str(tmp_path / "d"))
    assert summary["verified_by"] == "etag/size" and summary["copied"] == 2
    remote = sync_mod.RemoteFile("k", 1000, hashlib.md5(b"b" * 1000).hexdigest())
    assert "ETag" in sync_mod.verify_file(str(tmp_path / "d" / "part-0.parquet"), remote, None)
    assert sync_mod.verify_file(str(tmp_path / "d" / "part-0.parquet"), remote, None, checksum="size") is None


def test_empty_prefix_is_an_error(s3_bucket, tmp_path):
    with pytest.raises(sync_mod.SyncError, match="no objects"):
        sync_mod.sync_from_s3(f"{s3_bucket}/nothing", str(tmp_path / "d"))


def test_cli_pull_then_shards(uploaded, tmp_path, monkeypatch, capsys):
    _, files, uri, _ = uploaded
    calls = []
    fake = types.ModuleType("training.data.shards")
    fake.convert_to_shards = lambda src, out, **kw: calls.append((src, out, kw)) or f"{out}/index.json"
    monkeypatch.setitem(sys.modules, "training.data.shards", fake)
    dest = str(tmp_path / "dest")
    assert dhs_sync.main([uri, dest, "--workers", "2", "--layout", "arrow"]) == 0
    assert calls == [(dest, dest + ".shards", {"layout": "arrow"})]
    summary = json.loads(capsys.readouterr().out)
    assert summary["files"] == len(files) + 1 and summary["shards_index"] == dest + ".shards/index.json"


def test_cli_push_and_missing_shard_writer(s3_bucket, tmp_path, monkeypatch, capsys):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("hello")
    assert dhs_sync.main([str(src), f"{s3_bucket}/pushed"]) == 0
    assert json.loads(capsys.readouterr().out)["uploaded"] == 1
    monkeypatch.setitem(sys.modules, "training.data.shards", None)  # import fails
    assert dhs_sync.main([f"{s3_bucket}/pushed", str(tmp_path / "d")]) == 1
    assert "convert_to_shards is not available" in capsys.readouterr().err
    assert (tmp_path / "d" / "a.txt").read_text() == "hello"


def test_large_objects_take_the_ranged_download_path(uploaded, tmp_path, monkeypatch):
    src, files, uri, _ = uploaded
    monkeypatch.setattr(sync_mod, "_STREAM_LIMIT", -1)  # every object counts as large
    streamed = []
    monkeypatch.setattr(sync_mod, "_stream", lambda *a: streamed.append(a))
    dest = tmp_path / "dest"
    assert sync_mod.sync_from_s3(uri, str(dest))["copied"] == len(files) + 1
    assert streamed == []
    for rel in files:
        assert _digest(dest / rel) == _digest(src / rel)


def test_sync_then_real_shard_conversion(s3_bucket, tmp_path):
    pytest.importorskip("training.data.shards")
    from dhs_gen.io.stamps import encode_stamp

    rng = np.random.default_rng(1)
    images = rng.normal(size=(6, 3, 16, 16)).astype(np.float32)
    table = pa.table({"task_id": [f"t{i}" for i in range(6)],
                      "stamp": [encode_stamp(im, "grz", {}) for im in images],
                      "region_split": ["train"] * 4 + ["val"] * 2})
    src = tmp_path / "stamps"
    write_parquet(table, str(src / "part-0.parquet"))
    (src / "_SUCCESS").write_text("{}")
    upload_tree(str(src), f"{s3_bucket}/stamps")
    dest = str(tmp_path / "local" / "stamps")
    assert dhs_sync.main([f"{s3_bucket}/stamps", dest]) == 0
    index = json.loads(open(dest + ".shards/index.json").read())
    assert index["n_rows"] == 6
    shards = [n for n in os.listdir(dest + ".shards") if n.endswith(".npy")]
    stacked = np.concatenate([np.load(os.path.join(dest + ".shards", n)) for n in sorted(shards)])
    np.testing.assert_array_equal(np.sort(stacked.ravel()), np.sort(images.ravel()))


# ----------------------------------------------------------------- issue 20 (items 2 and 5)

def test_a_changed_object_of_the_same_size_is_recopied(uploaded, tmp_path):
    src, _, uri, _ = uploaded
    dest = tmp_path / "dest"
    sync_mod.sync_from_s3(uri, str(dest))
    (src / "blob.bin").write_bytes(b"\x01" * 300_000)  # same size, new content, re-uploaded
    upload_tree(str(src), uri)
    again = sync_mod.sync_from_s3(uri, str(dest))
    assert again["copied"] == 2  # blob.bin and the manifest that changed with it
    assert _digest(dest / "blob.bin") == _digest(src / "blob.bin")
    assert again["verified_by"] == "sha256 manifest" and again["verified"] == {"sha256": again["files"] - 1,
                                                                                "md5_etag": 1}


def test_objects_gone_from_s3_are_removed_and_unrelated_files_kept(s3_bucket, tmp_path):
    bucket, _ = parse_s3_uri(s3_bucket)
    client = s3_client()
    for name in ("part-0.parquet", "part-1.parquet", "_SUCCESS"):
        client.put_object(Bucket=bucket, Key=f"out/{name}", Body=name.encode() * 10)
    dest = tmp_path / "d"
    sync_mod.sync_from_s3(f"{s3_bucket}/out", str(dest))
    (dest / "notes.txt").write_text("mine")
    client.delete_object(Bucket=bucket, Key="out/part-1.parquet")
    again = sync_mod.sync_from_s3(f"{s3_bucket}/out", str(dest), verify_existing=True)
    assert again["removed_vanished"] == ["part-1.parquet"] and not (dest / "part-1.parquet").exists()
    assert (dest / "notes.txt").read_text() == "mine" and (dest / "part-0.parquet").exists()


def test_unfinished_source_is_refused(s3_bucket, tmp_path):
    bucket, _ = parse_s3_uri(s3_bucket)
    client = s3_client()
    client.put_object(Bucket=bucket, Key="killed/part-0.parquet", Body=b"x" * 100)  # no _SUCCESS
    with pytest.raises(sync_mod.SyncError, match="unfinished dataset folder.*killed.*--allow-partial"):
        sync_mod.sync_from_s3(f"{s3_bucket}/killed", str(tmp_path / "d"))
    assert not (tmp_path / "d").exists()
    summary = sync_mod.sync_from_s3(f"{s3_bucket}/killed", str(tmp_path / "d"), allow_partial=True)
    assert summary["unfinished_datasets"] == [""] and summary["copied"] == 1
