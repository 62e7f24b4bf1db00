"""The launcher: plans and dry-runs without AWS, validation before any call, and a moto-backed launch."""
from __future__ import annotations

import json
import os

import pytest

from dhs_gen.config import ConfigError
from emr import launch as launcher
from emr.presets import AccountSettings

ACCOUNT = AccountSettings(s3_prefix="s3://my-bucket/dhs")


@pytest.fixture
def fake_root(tmp_path):
    """A checkout with the two negatives jobs and the catalogue config they share."""
    (tmp_path / "jobs").mkdir()
    (tmp_path / "configs").mkdir()
    for name in ("negative_pool", "sample_negatives"):
        (tmp_path / "jobs" / f"{name}.py").write_text("# job\n")
    (tmp_path / "configs" / "catalog.yaml").write_text("compact: {note: '{run}/compacted'}\n")
    (tmp_path / "configs" / "catalog_demo.yaml").write_text("catalog: {}\n")
    return tmp_path


@pytest.fixture
def no_aws(monkeypatch, tmp_path):
    """No credentials anywhere, and any boto3 client creation fails the test."""
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    import boto3

    def _refuse(*args, **kwargs):
        raise AssertionError("an AWS client was created")

    monkeypatch.setattr(boto3, "client", _refuse)


def test_plan_two_steps_in_order_with_run_prefix(fake_root):
    plan = launcher.build_plan("negatives", "medium", ACCOUNT, run_id="r1", root=str(fake_root),
                               overrides=["sampling.seed=7"], uris=["tractor=s3://survey/sweeps", "positives=s3://p/v1"],
                               extra_args=["--note", "{run}/x"])
    assert plan.operation == "RunJobFlow"
    assert plan.run_uri == "s3://my-bucket/dhs/runs/r1"
    args = [s["HadoopJarStep"]["Args"] for s in plan.steps]
    assert [a[3] for a in args] == ["/opt/dhs/jobs/negative_pool.py", "/opt/dhs/jobs/sample_negatives.py"]
    run = "s3://my-bucket/dhs/runs/r1"
    assert args[0][4:] == [
        "--config", f"{run}/artifacts/configs/catalog.yaml", "--set", "sampling.seed=7",
        "--tractor", "s3://survey/sweeps", "--output", f"{run}/negatives_pool", "--note", f"{run}/x"]
    assert args[1][4:] == [
        "--config", f"{run}/artifacts/configs/catalog.yaml", "--set", "sampling.seed=7",
        "--pool", f"{run}/negatives_pool", "--output", f"{run}/sampled_negatives", "--positives", "s3://p/v1",
        "--note", f"{run}/x"]
    assert plan.configs == {"catalog.yaml": str(fake_root / "configs" / "catalog.yaml")}  # shared, uploaded once
    assert all(s["ActionOnFailure"] == "TERMINATE_CLUSTER" for s in plan.steps)


def test_plan_for_running_cluster_adds_steps(fake_root):
    plan = launcher.build_plan("negatives", "smoke", ACCOUNT, run_id="r1", root=str(fake_root), cluster_id="j-XYZ",
                               uris=["tractor=s3://survey/sweeps"])
    assert "--positives" not in plan.steps[1]["HadoopJarStep"]["Args"]  # optional input left out
    assert plan.operation == "AddJobFlowSteps"
    assert plan.request["JobFlowId"] == "j-XYZ"
    assert all(s["ActionOnFailure"] == "CONTINUE" for s in plan.steps)


@pytest.mark.parametrize("kwargs, message", [
    ({"preset_name": "gigantic"}, "unknown preset"),
    ({"configs": ["only-one.yaml"]}, "give one per step"),
    ({"configs": ["missing-a.yaml", "missing-b.yaml"]}, "config file not found"),
    ({"release_label": "emr-6.15.0"}, "not allowed"),
    ({"uris": []}, "needs {tractor}: pass --uri tractor=URI"),
    ({"uris": ["tractor"]}, "expected KEY=URI"),
    ({"uris": ["run=s3://x/y"]}, "expected KEY=URI"),
])
def test_validation_errors(fake_root, kwargs, message):
    inputs = {"pipeline": "negatives", "preset_name": "medium", "account": ACCOUNT, "root": str(fake_root),
              "uris": ["tractor=s3://survey/sweeps"], **kwargs}
    with pytest.raises((ConfigError, ValueError), match=message):
        launcher.build_plan(**inputs)


def test_missing_job_script_and_config_named(tmp_path):
    (tmp_path / "configs").mkdir()
    with pytest.raises(ConfigError, match="jobs/phase4c_inject.py"):
        launcher.build_plan("phase4c", "medium", ACCOUNT, root=str(tmp_path))
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "phase4c_inject.py").write_text("")
    with pytest.raises(ConfigError, match=r"phase4c\*\.yaml"):
        launcher.build_plan("phase4c", "medium", ACCOUNT, root=str(tmp_path))


def test_dry_run_prints_valid_requests_without_aws(no_aws, capsys):
    assert launcher.main(["healthcheck", "--preset", "medium", "--dry-run", "--run-id", "r1"]) == 0
    out = capsys.readouterr()
    report = json.loads(out.out)
    assert "placeholder" in out.err
    assert report["operation"] == "RunJobFlow"
    assert report["request"]["Instances"]["InstanceGroups"][1]["InstanceType"] == "m5.2xlarge"
    assert report["commands"][0].startswith("spark-submit --deploy-mode cluster /opt/dhs/jobs/healthcheck.py")
    assert report["on_demand_usd_per_hour"] == pytest.approx(0.24 + 10 * 0.48)


@pytest.mark.parametrize("argv, message", [
    (["--preset", "nope"], "unknown preset"),
    (["--preset", "smoke", "--s3-prefix", "s3://b-1/x", "--subnet-id", "subnet-0123456789abcdef0",
      "--subnet-az", "eu-west-1a"], "region/subnet mismatch"),
    (["--preset", "smoke"], "no S3 prefix"),
])
def test_cli_errors_before_any_aws_call(no_aws, capsys, monkeypatch, argv, message):
    monkeypatch.delenv("DHS_S3_PREFIX", raising=False)
    monkeypatch.delenv("DHS_EMR_ACCOUNT", raising=False)
    assert launcher.main(["healthcheck", *argv]) == 2
    assert message in capsys.readouterr().err


def _fake_stage(out_dir, configs, values, cluster_python):
    os.makedirs(out_dir, exist_ok=True)
    files = {"dark_halo_scope-9.9.9-py3-none-any.whl": b"wheel", "requirements.txt": b"numpy==2.2.6\n",
             "bootstrap/install_dhs.sh": b"#!/bin/bash\n", "SHA256SUMS": b"x  y\n"}
    files.update({f"configs/{name}": open(path, "rb").read().replace(b"{run}", values["run"].encode())
                  for name, path in configs.items()})
    staged = {}
    for name, data in files.items():
        path = os.path.join(out_dir, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as fh:
            fh.write(data)
        staged[name] = path
    return staged


@pytest.fixture
def moto_aws(monkeypatch):
    from moto import mock_aws

    for key in ("DHS_S3_ENDPOINT_URL", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        import boto3

        boto3.client("s3", region_name="us-east-2").create_bucket(
            Bucket="my-bucket", CreateBucketConfiguration={"LocationConstraint": "us-east-2"})
        yield boto3


def test_launch_uploads_and_creates_cluster_with_moto(moto_aws, fake_root, tmp_path, monkeypatch, capsys):
    import emr.packaging

    monkeypatch.setattr(emr.packaging, "stage_artifacts", _fake_stage)
    inputs = dict(pipeline="negatives", preset_name="smoke", account=ACCOUNT, run_id="r1", root=str(fake_root),
                  uris=["tractor=s3://survey/sweeps"])
    assert launcher.launch(inputs, wait=False, work_dir=str(tmp_path / "work")) == 0
    s3 = moto_aws.client("s3", region_name="us-east-2")
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="my-bucket")["Contents"]}
    base = "dhs/runs/r1/artifacts/"
    assert {base + "dark_halo_scope-9.9.9-py3-none-any.whl", base + "_MANIFEST.json",
            base + "configs/catalog.yaml", "dhs/runs/r1/launch.json"} <= keys
    config = s3.get_object(Bucket="my-bucket", Key=base + "configs/catalog.yaml")["Body"].read()
    assert config == b"compact: {note: 's3://my-bucket/dhs/runs/r1/compacted'}\n"
    record = json.loads(s3.get_object(Bucket="my-bucket", Key="dhs/runs/r1/launch.json")["Body"].read())

    emr = moto_aws.client("emr", region_name="us-east-2")
    cluster = emr.describe_cluster(ClusterId=record["cluster_id"])["Cluster"]
    assert cluster["ReleaseLabel"] == "emr-7.13.0"
    assert cluster["Name"] == "dhs-r1"
    bootstrap = emr.list_bootstrap_actions(ClusterId=record["cluster_id"])["BootstrapActions"][0]
    assert bootstrap["Args"][1] == "dark_halo_scope-9.9.9-py3-none-any.whl"  # the wheel actually built
    steps = {s["Id"]: s["Name"] for s in emr.list_steps(ClusterId=record["cluster_id"])["Steps"]}
    assert [steps[i] for i in record["step_ids"]] == ["dhs negative-pool", "dhs sample-negatives"]
    assert record["cluster_id"] in capsys.readouterr().out


def test_launch_waits_on_moto_steps_until_timeout(moto_aws, fake_root, tmp_path, monkeypatch, capsys):
    import emr.packaging

    monkeypatch.setattr(emr.packaging, "stage_artifacts", _fake_stage)
    inputs = dict(pipeline="negatives", preset_name="smoke", account=ACCOUNT, run_id="r2", root=str(fake_root),
                  uris=["tractor=s3://survey/sweeps"])
    with pytest.raises(TimeoutError, match="steps still running"):
        launcher.launch(inputs, wait=True, poll_seconds=0.01, timeout_seconds=0.05, work_dir=str(tmp_path / "w"))
    assert "dhs negative-pool" in capsys.readouterr().out


def test_add_steps_to_existing_cluster_with_moto(moto_aws, fake_root, tmp_path, monkeypatch):
    import emr.packaging

    monkeypatch.setattr(emr.packaging, "stage_artifacts", _fake_stage)
    emr = moto_aws.client("emr", region_name="us-east-2")
    first = launcher.build_plan("negatives", "smoke", ACCOUNT, run_id="r0", root=str(fake_root),
                                uris=["tractor=s3://survey/sweeps"])
    cluster_id = emr.run_job_flow(**{**first.request, "Steps": []})["JobFlowId"]
    inputs = dict(pipeline="negatives", preset_name="smoke", account=ACCOUNT, run_id="r3", root=str(fake_root),
                  cluster_id=cluster_id, uris=["tractor=s3://survey/sweeps"])
    assert launcher.launch(inputs, wait=False, work_dir=str(tmp_path / "w")) == 0
    assert len(emr.list_steps(ClusterId=cluster_id)["Steps"]) == 2


def test_failed_run_exits_nonzero_with_cluster_hint(moto_aws, fake_root, tmp_path, monkeypatch, capsys):
    import emr.packaging
    import emr.waiter

    monkeypatch.setattr(emr.packaging, "stage_artifacts", _fake_stage)
    monkeypatch.setattr(emr.waiter, "wait_for_steps", lambda describe, ids, **kw: {i: "CANCELLED" for i in ids})
    inputs = dict(pipeline="negatives", preset_name="smoke", account=ACCOUNT, run_id="r4", root=str(fake_root),
                  uris=["tractor=s3://survey/sweeps"])
    assert launcher.launch(inputs, wait=True, work_dir=str(tmp_path / "w")) == 1
    out = capsys.readouterr().out
    assert "run FAILED" in out
    assert "bootstrap-actions/1/stderr.gz" in out and "s3://my-bucket/dhs/emr-logs/j-" in out
