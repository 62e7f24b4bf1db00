"""Pure builders of the EMR API requests (plain dicts, golden-tested), and their validation.

A run is one transient cluster (``run_job_flow`` with the steps inline; it terminates when the
steps end or fail) or steps added to a running cluster (``add_job_flow_steps``). Each step is
``command-runner.jar spark-submit --deploy-mode cluster /opt/dhs/jobs/<job>.py <args>``: the job
script comes from the wheel the bootstrap installed; arguments travel as one list element each
(no shell), and :func:`command_line` shows them shell-quoted.
"""
from __future__ import annotations

import shlex
from typing import Dict, List, Sequence

from emr.presets import AccountSettings, ClusterPreset, configurations

JOBS_DIR = "/opt/dhs/jobs"
BOOTSTRAP_PATH = "bootstrap/install_dhs.sh"
ACTIONS_ON_FAILURE = ("TERMINATE_CLUSTER", "CANCEL_AND_WAIT", "CONTINUE")


def spark_submit_argv(job_script: str, job_args: Sequence[str] = (), spark_conf: Dict[str, str] | None = None) -> List[str]:
    """``spark-submit --deploy-mode cluster [--conf k=v ...] /opt/dhs/jobs/<script> <args>``."""
    if "/" in job_script or not job_script.endswith(".py"):
        raise ValueError(f"job_script must be a file name like 'phase4c_inject.py', got {job_script!r}")
    argv = ["spark-submit", "--deploy-mode", "cluster"]
    for key, value in sorted((spark_conf or {}).items()):
        argv += ["--conf", f"{key}={value}"]
    return argv + [f"{JOBS_DIR}/{job_script}", *[str(a) for a in job_args]]


def step(name: str, argv: Sequence[str], action_on_failure: str = "TERMINATE_CLUSTER") -> dict:
    """One EMR step running ``argv`` through command-runner.jar."""
    if action_on_failure not in ACTIONS_ON_FAILURE:
        raise ValueError(f"action_on_failure must be one of {ACTIONS_ON_FAILURE}")
    return {"Name": name, "ActionOnFailure": action_on_failure,
            "HadoopJarStep": {"Jar": "command-runner.jar", "Args": list(argv)}}


def command_line(step_request: dict) -> str:
    """The step's command as one shell-quoted line (what the node runs)."""
    return shlex.join(step_request["HadoopJarStep"]["Args"])


def bootstrap_action(artifacts_uri: str, wheel_name: str, python: str) -> dict:
    """The bootstrap action installing the wheel + pinned deps on every node."""
    base = artifacts_uri.rstrip("/")
    return {"Name": "install dark-halo-scope",
            "ScriptBootstrapAction": {"Path": f"{base}/{BOOTSTRAP_PATH}", "Args": [base, wheel_name, python]}}


def _instance_group(name: str, role: str, group) -> dict:
    return {
        "Name": name, "InstanceRole": role, "Market": group.market,
        "InstanceType": group.instance_type, "InstanceCount": group.count,
        "EbsConfiguration": {"EbsOptimized": True, "EbsBlockDeviceConfigs": [
            {"VolumeSpecification": {"VolumeType": "gp3", "SizeInGB": group.ebs_gb}, "VolumesPerInstance": 1}]},
    }


def run_job_flow_request(name: str, preset: ClusterPreset, account: AccountSettings, bootstrap: dict,
                         steps: Sequence[dict], keep_alive: bool = False) -> dict:
    """``run_job_flow`` kwargs for a cluster of ``preset`` in ``account`` (already resolved)."""
    instances = {
        "InstanceGroups": [_instance_group("master", "MASTER", preset.master),
                           _instance_group("core", "CORE", preset.core)],
        "KeepJobFlowAliveWhenNoSteps": keep_alive,
        "TerminationProtected": False,
    }
    if account.subnet_id:
        instances["Ec2SubnetId"] = account.subnet_id
    if account.ec2_key_name:
        instances["Ec2KeyName"] = account.ec2_key_name
    tags = {"project": "dark-halo-scope", **account.tags}
    return {
        "Name": name,
        "LogUri": account.log_uri,
        "ReleaseLabel": preset.release_label,
        "Applications": [{"Name": "Hadoop"}, {"Name": "Spark"}],
        "Instances": instances,
        "BootstrapActions": [bootstrap],
        "Steps": list(steps),
        "Configurations": configurations(preset),
        "AutoTerminationPolicy": {"IdleTimeout": preset.idle_timeout_minutes * 60},
        "JobFlowRole": account.job_flow_role,
        "ServiceRole": account.service_role,
        "VisibleToAllUsers": True,
        "StepConcurrencyLevel": 1,
        "Tags": [{"Key": k, "Value": v} for k, v in sorted(tags.items())],
    }


def add_steps_request(cluster_id: str, steps: Sequence[dict]) -> dict:
    """``add_job_flow_steps`` kwargs."""
    return {"JobFlowId": cluster_id, "Steps": list(steps)}


def validate_request(operation: str, params: dict) -> None:
    """ValueError unless ``params`` match botocore's EMR model for ``operation`` (no AWS call)."""
    import botocore.session
    from botocore.validate import ParamValidator

    model = botocore.session.get_session().get_service_model("emr").operation_model(operation)
    report = ParamValidator().validate(params, model.input_shape)
    if report.has_errors():
        raise ValueError(f"invalid {operation} request: {report.generate_report()}")
