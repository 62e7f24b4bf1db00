"""Shared fixtures: a local Spark session, a loopback S3 server, and the real data folders."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("DHS_NO_PROGRESS", "1")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
# spark-submit finds Spark through the python on PATH: put the venv's first.
os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"
PROJECT_DATA = PROJECT_ROOT / "dhs_gen" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (real DR10 cutouts, tables, COSMOS, PSFEx); skips when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA


@pytest.fixture(scope="session")
def project_data() -> Path:
    """The small real data shipped inside the package (dhs_gen/data)."""
    return PROJECT_DATA


@pytest.fixture(scope="session")
def spark():
    """One local[2] SparkSession for the whole test run, built by the production builder."""
    pytest.importorskip("pyspark")
    from dhs_gen.spark import build_spark_session

    session = build_spark_session("dhs-tests", master="local[2]")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def s3_server():
    """A moto S3 server on 127.0.0.1 (random port); sets the endpoint env for storage/boto3."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    saved = {k: os.environ.get(k) for k in ("DHS_S3_ENDPOINT_URL", "AWS_ACCESS_KEY_ID",
                                             "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")}
    os.environ.update({"DHS_S3_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing",
                       "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"})
    yield endpoint
    server.stop()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def s3_bucket(s3_server):
    """A fresh, empty bucket on the loopback server; yields its s3:// URI."""
    import uuid

    import boto3

    name = f"dhs-test-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1").create_bucket(Bucket=name)
    import fsspec

    fsspec.filesystem("s3").invalidate_cache() if "s3" in fsspec.available_protocols() else None
    return f"s3://{name}"
