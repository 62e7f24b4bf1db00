"""``dhs sync``: copy a training dataset from S3 to local disk (``emr.sync``), then build training shards.

``dhs sync s3://bucket/dataset /data/dataset`` copies and verifies every object (see
:mod:`emr.sync`), then ``training.data.shards.convert_to_shards`` turns the copy into the shard layout
the loader reads (``--no-shards`` copies only). With a local SRC and an ``s3://`` DEST it uploads
instead, writing the ``_MANIFEST.json`` of SHA-256s that later syncs verify.
"""
from __future__ import annotations

import argparse
import json
import sys

from dhs_gen.entrypoint import plain_text
from emr.s3 import upload_tree
from emr.sync import SyncError, sync_from_s3


def build_shards(data_dir: str, shards_dir: str, **options) -> str:
    """Convert the local copy into training shards with ``training.data.shards.convert_to_shards``.

    ``options`` (layout, label, split, ...) go to the converter; returns its ``index.json`` path.
    """
    try:
        from training.data.shards import convert_to_shards
    except ImportError as exc:
        raise RuntimeError("training.data.shards.convert_to_shards is not available "
                           f"({exc}); the copy is complete, rerun with --no-shards to skip") from exc
    return convert_to_shards(data_dir, shards_dir, **options)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dhs sync", description=plain_text(__doc__),
                                     epilog="With a local SRC and an s3:// DEST it uploads instead, "
                                            "writing the _MANIFEST.json of SHA-256s that later syncs verify.")
    parser.add_argument("src", help="s3://bucket/dataset (or a local directory to upload)")
    parser.add_argument("dest", help="local directory (or s3://... to upload to)")
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--verify-existing", action="store_true", help="re-check checksums of files already present")
    parser.add_argument("--checksum", choices=("auto", "size"), default="auto",
                        help="'size' skips content checks (e.g. SSE-KMS objects whose ETag is not an MD5)")
    parser.add_argument("--shards-dir", help="where to write training shards (default <dest>.shards)")
    parser.add_argument("--layout", help="shard layout (training.data.shards: npy, arrow, parquet; default npy)")
    parser.add_argument("--label", type=int, help="label for a folder of cutout npz files")
    parser.add_argument("--split", help="split for a folder of cutouts or a table without one")
    parser.add_argument("--no-shards", action="store_true", help="copy only")
    parser.add_argument("--allow-partial", action="store_true",
                        help="copy and convert a source whose Parquet folders lack their _SUCCESS marker")
    return parser


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    try:
        if not args.src.startswith(("s3://", "s3a://")) and args.dest.startswith("s3://"):
            manifest = upload_tree(args.src, args.dest, workers=args.workers)
            print(json.dumps({"uploaded": len(manifest), "dest": args.dest,
                              "bytes": sum(e["size"] for e in manifest.values())}))
            return 0
        summary = sync_from_s3(args.src, args.dest, workers=args.workers, verify_existing=args.verify_existing,
                               checksum=args.checksum, allow_partial=args.allow_partial)
        if not args.no_shards:
            shards_dir = args.shards_dir or args.dest.rstrip("/") + ".shards"
            options = {k: v for k, v in (("layout", args.layout), ("label", args.label), ("split", args.split))
                       if v is not None}
            if args.allow_partial:
                options["allow_partial"] = True
            summary["shards_index"] = build_shards(args.dest, shards_dir, **options)
        print(json.dumps(summary, sort_keys=True))
        return 0
    except (SyncError, RuntimeError, ValueError, FileNotFoundError) as exc:
        print(f"dhs sync: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    from dhs_gen.entrypoint import run_main

    sys.exit(run_main(main))
