"""The launcher: plans and dry-runs without AWS, validation before any call, and a moto-backed launch."""
from __future__ import annotations

import json
import os
import re

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
        "--input", "s3://survey/sweeps", "--output", f"{run}/negatives_pool", "--note", f"{run}/x"]
    assert args[1][4:] == [
        "--config", f"{run}/artifacts/configs/catalog.yaml", "--set", "sampling.seed=7",
        "--input", f"{run}/negatives_pool", "--output", f"{run}/sampled_negatives", "--positives", "s3://p/v1",
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
    ({"uris": []}, "needs input {tractor}: pass --uri tractor=URI"),
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

        s3 = boto3.client("s3", region_name="us-east-2")
        for bucket in ("my-bucket", "survey"):
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "us-east-2"})
        s3.put_object(Bucket="survey", Key="sweeps/part-0.parquet", Body=b"PAR1")  # the runs' input
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
    with pytest.raises(TimeoutError, match=r"steps still running after 0s: \{'s-"):  # boto3's step_complete waiter
        launcher.launch(inputs, wait=True, poll_seconds=0.01, timeout_seconds=0.05, work_dir=str(tmp_path / "w"))
    assert re.search(r"cluster j-\w+: WAITING", capsys.readouterr().out)  # boto3's cluster_running waiter


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
    monkeypatch.setattr(emr.waiter, "wait_for_steps", lambda client, cluster, ids, **kw: {i: "CANCELLED" for i in ids})
    inputs = dict(pipeline="negatives", preset_name="smoke", account=ACCOUNT, run_id="r4", root=str(fake_root),
                  uris=["tractor=s3://survey/sweeps"])
    assert launcher.launch(inputs, wait=True, work_dir=str(tmp_path / "w")) == 1
    out = capsys.readouterr().out
    assert "run FAILED" in out
    assert "bootstrap-actions/1/stderr.gz" in out and "s3://my-bucket/dhs/emr-logs/j-" in out


def _manifest(path, rows):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.mkdir(parents=True)
    pq.write_table(pa.table({"injection_id": [f"i{n}" for n in range(rows)]}), path / "part-0.parquet")
    return path


def test_readme_dry_run_without_the_manifest_names_what_is_missing(no_aws, capsys, monkeypatch):
    """`make emr-phase4c PRESET=medium CONFIG=configs/phase4c.yaml DRY_RUN=1` used to print requests
    for a run that could only fail on the cluster (no manifest anywhere)."""
    monkeypatch.delenv("DHS_EMR_ACCOUNT", raising=False)
    assert launcher.main(["phase4c", "--preset", "medium", "--config", "configs/phase4c.yaml", "--dry-run"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == ("dhs emr: error: step phase4c needs input {manifest}: pass --uri manifest=URI "
                    "(make: URIS=\"manifest=URI\") or set manifest_uri in its config")


def test_dry_run_refuses_a_missing_local_input_and_a_malformed_s3_one(no_aws, tmp_path):
    with pytest.raises(ConfigError, match=f"input manifest does not exist: {tmp_path}/nope"):
        launcher.build_plan("phase4c", "medium", ACCOUNT, uris=[f"manifest={tmp_path}/nope"], dry_run=True)
    with pytest.raises(ConfigError, match="not an s3://bucket/key URI"):
        launcher.build_plan("phase4c", "medium", ACCOUNT, uris=["manifest=s3://bucket-only"], dry_run=True)


def test_dry_run_estimate_from_the_bench_results_or_the_documented_rate(no_aws, tmp_path, capsys):
    manifest = _manifest(tmp_path / "manifest", 50)
    bench = tmp_path / "results.json"
    bench.write_text(json.dumps({"results": [
        {"name": "phase4c.spark_local1_stamps_per_cpu_s", "value": 500.0, "unit": "stamps/s/core"}]}))
    plan = launcher.build_plan("phase4c", "large", ACCOUNT, uris=[f"manifest={manifest}"], dry_run=True,
                               rows=12_000_000, bench_results=str(bench))
    (step,) = plan.estimate["steps"]
    cores = step["cores"]
    assert cores == (34 * 2 - 1) * 4  # large: 34 x m5.2xlarge, 2 executors/node of 4 cores, one is the driver
    assert step["rows_per_s_per_core"] == 500.0 and str(bench) in step["rate_source"]
    hours = 12_000_000 / (500.0 * cores) / 3600
    assert plan.estimate["total_hours"] == pytest.approx(hours, abs=1e-4)
    assert plan.estimate["usd_on_demand"] == pytest.approx(hours * plan.preset.hourly_cost_usd(), abs=0.01)
    # no results file: the documented rate; no --rows: counted from the local manifest's footers
    plan = launcher.build_plan("phase4c", "large", ACCOUNT, uris=[f"manifest={manifest}"], dry_run=True,
                               bench_results=str(tmp_path / "absent.json"))
    (step,) = plan.estimate["steps"]
    assert step["rows"] == 50 and step["rows_per_s_per_core"] == 345.0
    assert "docs/injection_jobs.md" in step["rate_source"]
    assert launcher.main(["phase4c", "--preset", "large", "--dry-run", "--uri", f"manifest={manifest}",
                          "--rows", "12000000"]) == 0
    err = capsys.readouterr().err
    assert "estimate: " in err and " h wall, ~$" in err and "executor cores" in err


def test_launch_checks_s3_inputs_exist_before_uploading(moto_aws, fake_root, tmp_path, monkeypatch):
    import emr.packaging

    monkeypatch.setattr(emr.packaging, "stage_artifacts", _fake_stage)
    inputs = dict(pipeline="negatives", preset_name="smoke", account=ACCOUNT, run_id="r5", root=str(fake_root),
                  uris=["tractor=s3://survey/not-there"])
    with pytest.raises(ConfigError, match="input tractor does not exist: s3://survey/not-there"):
        launcher.launch(inputs, wait=False, work_dir=str(tmp_path / "w"))
    assert "Contents" not in moto_aws.client("s3", region_name="us-east-2").list_objects_v2(Bucket="my-bucket")
