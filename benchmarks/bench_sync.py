"""Staging throughput: ``emr.sync`` parallel copy vs a one-worker copy, and the cost of a resume pass.

Runs against a moto S3 server in a separate process on loopback (CPU-bound on a small machine, so
the parallel gain is a floor: against real S3, where each GET waits tens of ms, workers gain more).
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

from benchmarks.timing import entry


def _serve():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(endpoint + "/moto-api/", timeout=1)
            return server, endpoint
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise RuntimeError("moto server did not start")


def run(quick: bool = False) -> list:
    import numpy as np

    n_files, size = (40, 64 * 1024) if quick else (300, 256 * 1024)
    server, endpoint = _serve()
    saved = {k: os.environ.get(k) for k in ("DHS_S3_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                             "AWS_DEFAULT_REGION")}
    os.environ.update({"DHS_S3_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "bench",
                       "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"})
    work = tempfile.mkdtemp(prefix="dhs-bench-sync-")
    try:
        from benchmarks.timing import best_time
        from emr.s3 import s3_client, upload_tree
        from emr.sync import sync_from_s3

        s3_client().create_bucket(Bucket="bench")
        src = os.path.join(work, "src")
        rng = np.random.default_rng(0)
        for i in range(n_files):
            path = os.path.join(src, f"part={i % 8}", f"file-{i:05d}.bin")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as fh:
                fh.write(rng.bytes(size))
        upload_tree(src, "s3://bench/ds", workers=8)
        megabytes = n_files * size / 1e6

        def copy(workers):
            dest = os.path.join(work, f"dest-{workers}")
            shutil.rmtree(dest, ignore_errors=True)
            sync_from_s3("s3://bench/ds", dest, workers=workers)

        parallel = best_time(lambda: copy(16), repeats=2 if quick else 3)
        serial = best_time(lambda: copy(1), repeats=1, warmup=0)
        resume = best_time(lambda: sync_from_s3("s3://bench/ds", os.path.join(work, "dest-16"), workers=16),
                           repeats=3)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        server.terminate()
        server.wait(timeout=10)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    note = f"{n_files} files x {size // 1024} KiB, sha256-verified, loopback moto S3"
    return [
        entry("sync_copy_throughput_16_workers", megabytes / parallel, "MB/s", "sync_copy_throughput_1_worker",
              megabytes / serial, notes=note),
        entry("sync_resume_pass_all_present", resume, "s", "sync_full_copy_16_workers", parallel,
              notes="rerun over a complete copy: list + stat only"),
    ]
