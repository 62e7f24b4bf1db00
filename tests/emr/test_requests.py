"""Golden tests of the pure EMR request builders, checked against botocore's EMR model."""
from __future__ import annotations

import shlex

import pytest

from emr import requests as rq
from emr.presets import AccountSettings, ClusterPreset, resolve_account

PRESET = ClusterPreset(release_label="emr-7.13.0", region="us-east-2", python="3.11",
                       master={"instance_type": "m5.xlarge"},
                       core={"instance_type": "m5.xlarge", "count": 2, "market": "SPOT", "ebs_gb": 100},
                       idle_timeout_minutes=20)
ACCOUNT = AccountSettings(s3_prefix="s3://my-bucket/dhs", subnet_id="subnet-0123456789abcdef0",
                          subnet_availability_zone="us-east-2a", ec2_key_name="me", tags={"owner": "lab"})
ARTIFACTS = "s3://my-bucket/dhs/runs/r1/artifacts"
WHEEL = "dark_halo_scope-0.1.0-py3-none-any.whl"


def _ebs(size):
    return {"EbsOptimized": True, "EbsBlockDeviceConfigs": [
        {"VolumeSpecification": {"VolumeType": "gp3", "SizeInGB": size}, "VolumesPerInstance": 1}]}


STEP = {"Name": "dhs healthcheck", "ActionOnFailure": "TERMINATE_CLUSTER",
        "HadoopJarStep": {"Jar": "command-runner.jar", "Args": [
            "spark-submit", "--deploy-mode", "cluster", "/opt/dhs/jobs/healthcheck.py",
            "--output", "s3://my-bucket/dhs/runs/r1/healthcheck", "--set", "note=two words"]}}

GOLDEN = {
    "Name": "dhs-r1",
    "LogUri": "s3://my-bucket/dhs/emr-logs/",
    "ReleaseLabel": "emr-7.13.0",
    "Applications": [{"Name": "Hadoop"}, {"Name": "Spark"}],
    "Instances": {
        "InstanceGroups": [
            {"Name": "master", "InstanceRole": "MASTER", "Market": "ON_DEMAND", "InstanceType": "m5.xlarge",
             "InstanceCount": 1, "EbsConfiguration": _ebs(64)},
            {"Name": "core", "InstanceRole": "CORE", "Market": "SPOT", "InstanceType": "m5.xlarge",
             "InstanceCount": 2, "EbsConfiguration": _ebs(100)},
        ],
        "KeepJobFlowAliveWhenNoSteps": False,
        "TerminationProtected": False,
        "Ec2SubnetId": "subnet-0123456789abcdef0",
        "Ec2KeyName": "me",
    },
    "BootstrapActions": [{"Name": "install dark-halo-scope", "ScriptBootstrapAction": {
        "Path": f"{ARTIFACTS}/bootstrap/install_dhs.sh", "Args": [ARTIFACTS, WHEEL, "3.11"]}}],
    "Steps": [STEP],
    "Configurations": [
        {"Classification": "spark-defaults", "Properties": {
            "spark.dynamicAllocation.enabled": "false",
            "spark.executor.instances": "3",
            "spark.executor.cores": "2",
            "spark.executor.memory": "4g",
            "spark.executor.memoryOverhead": "2048m",
            "spark.driver.cores": "2",
            "spark.driver.memory": "4g",
            "spark.driver.memoryOverhead": "2048m",
            "spark.sql.shuffle.partitions": "12",
            "spark.sql.ansi.enabled": "false",
            "spark.yarn.maxAppAttempts": "1",
            "spark.executorEnv.NUMBA_CACHE_DIR": "/tmp/numba_cache",
            "spark.yarn.appMasterEnv.NUMBA_CACHE_DIR": "/tmp/numba_cache",
            "spark.yarn.appMasterEnv.PYSPARK_PYTHON": "/usr/bin/python3.11",
            "spark.executorEnv.PYSPARK_PYTHON": "/usr/bin/python3.11"}},
        {"Classification": "spark-env", "Properties": {}, "Configurations": [
            {"Classification": "export", "Properties": {
                "PYSPARK_PYTHON": "/usr/bin/python3.11", "PYSPARK_DRIVER_PYTHON": "/usr/bin/python3.11",
                "NUMBA_CACHE_DIR": "/tmp/numba_cache"}}]},
    ],
    "AutoTerminationPolicy": {"IdleTimeout": 1200},
    "JobFlowRole": "EMR_EC2_DefaultRole",
    "ServiceRole": "EMR_DefaultRole",
    "VisibleToAllUsers": True,
    "StepConcurrencyLevel": 1,
    "Tags": [{"Key": "owner", "Value": "lab"}, {"Key": "project", "Value": "dark-halo-scope"}],
}


def _request():
    argv = rq.spark_submit_argv("healthcheck.py", ["--output", "s3://my-bucket/dhs/runs/r1/healthcheck",
                                                   "--set", "note=two words"])
    step = rq.step("dhs healthcheck", argv)
    bootstrap = rq.bootstrap_action(ARTIFACTS + "/", WHEEL, "3.11")
    return rq.run_job_flow_request("dhs-r1", PRESET, resolve_account(ACCOUNT, PRESET), bootstrap, [step])


def test_run_job_flow_golden():
    request = _request()
    assert request == GOLDEN
    rq.validate_request("RunJobFlow", request)


def test_add_steps_golden():
    request = rq.add_steps_request("j-ABC123", [STEP])
    assert request == {"JobFlowId": "j-ABC123", "Steps": [STEP]}
    rq.validate_request("AddJobFlowSteps", request)


def test_arguments_stay_whole_and_quote_for_the_shell():
    line = rq.command_line(STEP)
    assert "'note=two words'" in line
    assert shlex.split(line) == STEP["HadoopJarStep"]["Args"]


def test_spark_conf_flags_sorted_before_script():
    argv = rq.spark_submit_argv("x.py", ["--a"], {"spark.b": "2", "spark.a": "1"})
    assert argv == ["spark-submit", "--deploy-mode", "cluster", "--conf", "spark.a=1", "--conf", "spark.b=2",
                    "/opt/dhs/jobs/x.py", "--a"]


@pytest.mark.parametrize("script", ["jobs/x.py", "x.sh", "../x.py"])
def test_bad_job_script_rejected(script):
    with pytest.raises(ValueError, match="job_script"):
        rq.spark_submit_argv(script)


def test_bad_action_on_failure_rejected():
    with pytest.raises(ValueError, match="action_on_failure"):
        rq.step("x", ["a"], "IGNORE")


def test_validation_catches_malformed_requests():
    broken = dict(GOLDEN, Instances={**GOLDEN["Instances"], "InstanceGroups": [{"InstanceType": "m5.xlarge"}]})
    with pytest.raises(ValueError, match="invalid RunJobFlow request"):
        rq.validate_request("RunJobFlow", broken)
    with pytest.raises(ValueError, match="Unknown parameter"):
        rq.validate_request("AddJobFlowSteps", {"JobFlowId": "j-1", "Steps": [], "Extra": 1})
