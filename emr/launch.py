"""``dhs emr`` / ``make emr-*``: run a job chain as EMR steps, or print exactly what would be sent.

Everything is validated before any AWS call: preset, release, node memory, account settings
(S3 prefix, log URI, region/subnet), configs and job scripts, and every input dataset the steps
need (given with ``--uri`` or named in the step's config; a local input must exist; an s3:// input
is checked with S3 itself only when not a dry run); the requests are checked against botocore's
EMR model. ``--dry-run`` stops there and prints the requests and the estimated wall time and
on-demand cost (the preset's executor cores x the measured per-core rates of ``make bench``, or
their documented values); no credentials needed, nothing built or uploaded. Otherwise: build the
wheel + pinned requirements, upload them with the configs and bootstrap script to
``<s3_prefix>/runs/<run id>/artifacts/``, create the cluster (or add steps to ``--cluster-id``),
wait with boto3's EMR waiters, and print where the logs are.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import sys
import time
from typing import Dict, List, Sequence

from dhs_gen.config import ConfigError, load_config, read_yaml
from dhs_gen.entrypoint import error_line, plain_text
from dhs_gen.resources import PACKAGES_ROOT, configs_dir
from emr import catalog, pipelines, requests
from emr.packaging import project_root, wheel_filename
from emr.presets import AccountSettings, ClusterPreset, get_preset, resolve_account, spark_settings

DRY_RUN_PREFIX = "s3://example-bucket/dark-halo-scope"


@dataclasses.dataclass
class LaunchPlan:
    """Everything a launch will do, computed without AWS."""

    pipeline: str
    run_id: str
    run_uri: str
    artifacts_uri: str
    preset_name: str
    preset: ClusterPreset
    account: AccountSettings
    configs: Dict[str, str]
    values: Dict[str, str]
    operation: str
    request: dict
    inputs: Dict[str, str] = dataclasses.field(default_factory=dict)
    estimate: dict = dataclasses.field(default_factory=dict)

    @property
    def steps(self) -> List[dict]:
        return self.request["Steps"]

    def describe(self) -> dict:
        """The JSON-able dry-run report."""
        return {
            "operation": self.operation,
            "request": self.request,
            "commands": [requests.command_line(s) for s in self.steps],
            "uploads": {f"{self.artifacts_uri}/configs/{name}": path for name, path in self.configs.items()},
            "staged_at_launch": [f"{self.artifacts_uri}/{n}" for n in (wheel_filename(), "requirements.txt",
                                                                       requests.BOOTSTRAP_PATH, "SHA256SUMS")],
            "preset": self.preset_name,
            "on_demand_usd_per_hour": round(self.preset.hourly_cost_usd(), 3),
            "prices_as_of": catalog.PRICES_AS_OF,
            "log_uri": self.account.log_uri,
            "inputs": self.inputs,
            "estimate": self.estimate,
        }

    def estimate_line(self) -> str:
        """One line: total estimated wall time and cost, or why there is none."""
        est = self.estimate
        skipped = f"; not estimated (no measured rate): {', '.join(est['not_estimated'])}" if est["not_estimated"] else ""
        if est["total_hours"] is None:
            why = "no step has a measured rate" if not est["steps"] else "input rows unknown (pass --rows N)"
            return f"estimate: none ({why}){skipped}"
        rates = ", ".join(f"{s['step']} {s['rows_per_s_per_core']:.4g} rows/s/core [{s['rate_source']}]"
                          for s in est["steps"])
        return (f"estimate: {est['total_hours']:.2f} h wall, ~${est['usd_on_demand']:.2f} on demand "
                f"({est['steps'][0]['rows']} rows on {est['steps'][0]['cores']} executor cores; {rates}; "
                f"excludes cluster start-up{skipped})")


def build_plan(pipeline: str, preset_name: str, account: AccountSettings, *, configs: Sequence[str] = (),
               overrides: Sequence[str] = (), extra_args: Sequence[str] = (), uris: Sequence[str] = (),
               run_id: str | None = None,
               cluster_id: str | None = None, release_label: str | None = None,
               presets_uri: str | None = None, wheel_name: str | None = None,
               dry_run: bool = False, root: str | None = None, rows: int | None = None,
               bench_results: str | None = pipelines.BENCH_RESULTS) -> LaunchPlan:
    """Validate the inputs and compute the request (pure apart from reading local files).

    ``root``: a folder holding ``jobs/`` and ``configs/`` (default: the installed packages and
    their shipped configs). ``rows``: input rows for the estimate (default: counted from a local
    input's Parquet footers; unknown for s3:// inputs).
    """
    steps = pipelines.get_pipeline(pipeline)
    preset = get_preset(preset_name, presets_uri)
    if release_label:
        preset = ClusterPreset.model_validate({**preset.model_dump(), "release_label": release_label})
    if dry_run and not account.s3_prefix:
        account = account.model_copy(update={"s3_prefix": DRY_RUN_PREFIX})
    account = resolve_account(account, preset)
    pipelines.check_scripts(steps, root or str(PACKAGES_ROOT))
    config_paths = pipelines.resolve_configs(steps, list(configs),
                                             os.path.join(root, "configs") if root else str(configs_dir()))
    names = [os.path.basename(p) if p else None for p in config_paths]
    staged = {name: path for name, path in zip(names, config_paths) if path}
    if len(staged) != len({os.path.abspath(p) for p in config_paths if p}):
        raise ConfigError(f"configs for different steps share a file name: {config_paths}")
    run_id = run_id or f"{pipeline}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
    run_uri = f"{account.s3_prefix}/runs/{run_id}"
    artifacts_uri = f"{run_uri}/artifacts"
    values = {**pipelines.parse_uris(uris), "run": run_uri}
    step_configs = [read_yaml(p) if p else None for p in config_paths]
    inputs = {key: pipelines.fill(uri, values)
              for key, uri in pipelines.needed_inputs(steps, values, step_configs).items()}
    check_local_inputs(inputs)
    if rows is None and inputs:
        rows = count_local_rows(next(iter(inputs.values())))
    settings = spark_settings(preset)
    cores = int(settings["spark.executor.instances"]) * int(settings["spark.executor.cores"])
    estimate = pipelines.estimate(steps, rows, cores, preset.hourly_cost_usd(), pipelines.measured_rates(bench_results))
    on_failure = "CONTINUE" if cluster_id else "TERMINATE_CLUSTER"
    step_requests = [
        requests.step(f"dhs {spec.name}", requests.spark_submit_argv(
            spec.script, pipelines.step_args(spec, name and f"{artifacts_uri}/configs/{name}", values,
                                             overrides, extra_args)),
            on_failure)
        for spec, name in zip(steps, names)
    ]
    if cluster_id:
        operation, request = "AddJobFlowSteps", requests.add_steps_request(cluster_id, step_requests)
    else:
        bootstrap = requests.bootstrap_action(artifacts_uri, wheel_name or wheel_filename(), preset.python)
        operation = "RunJobFlow"
        request = requests.run_job_flow_request(f"dhs-{run_id}", preset, account, bootstrap, step_requests)
    requests.validate_request(operation, request)
    return LaunchPlan(pipeline, run_id, run_uri, artifacts_uri, preset_name, preset, account, staged, values,
                      operation, request, inputs, estimate)


def _is_s3(uri: str) -> bool:
    return uri.startswith("s3://")


def _local_path(uri: str) -> str:
    return uri[len("file://"):] if uri.startswith("file://") else uri


def check_local_inputs(inputs: Dict[str, str]) -> None:
    """ConfigError naming every input that is malformed (s3://) or missing (local paths)."""
    problems = []
    for key, uri in inputs.items():
        if _is_s3(uri):
            if not re.match(r"^s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]/.+", uri):
                problems.append(f"input {key} {uri!r} is not an s3://bucket/key URI")
        elif "://" in uri:
            problems.append(f"input {key} {uri!r}: the cluster reads s3:// (or file:// for local checks) URIs only")
        elif not os.path.exists(_local_path(uri)):
            problems.append(f"input {key} does not exist: {uri}")
    if problems:
        raise ConfigError("; ".join(problems))


def check_s3_inputs(inputs: Dict[str, str], client) -> None:
    """ConfigError naming every s3:// input with no object at or under its key (one LIST per input)."""
    from emr.s3 import parse_s3_uri

    missing = []
    for key, uri in inputs.items():
        if not _is_s3(uri):
            continue
        bucket, prefix = parse_s3_uri(uri)
        listed = client.list_objects_v2(Bucket=bucket, Prefix=prefix.rstrip("/"), MaxKeys=1)
        if not listed.get("KeyCount"):
            missing.append(f"input {key} does not exist: {uri}")
    if missing:
        raise ConfigError("; ".join(missing))


def count_local_rows(uri: str) -> int | None:
    """Rows of a local Parquet input from its footers; None for s3:// or unreadable inputs."""
    if _is_s3(uri):
        return None
    from dhs_gen.storage import count_parquet_rows

    try:
        return int(count_parquet_rows(_local_path(uri)))
    except Exception:  # noqa: BLE001 - an estimate is optional: a non-Parquet input just has none
        return None


def _print_step(names: Dict[str, str], log_uri: str, cluster_id: str):
    from emr.waiter import step_log_uris

    def on_change(step_id: str, state: str, step: dict) -> None:
        stamp = time.strftime("%H:%M:%S", time.gmtime())
        print(f"[{stamp}Z] {names.get(step_id, step_id)} ({step_id}): {state}", flush=True)
        if state in ("FAILED", "CANCELLED", "INTERRUPTED"):
            details = step.get("Status", {}).get("FailureDetails", {})
            if details:
                print(f"    reason: {details.get('Reason', '')} {details.get('Message', '')}".rstrip(), flush=True)
                if details.get("LogFile"):
                    print(f"    log file: {details['LogFile']}", flush=True)
            for kind, uri in step_log_uris(log_uri, cluster_id, step_id).items():
                print(f"    {kind}: {uri}", flush=True)

    return on_change


def launch(plan_inputs: dict, *, wait: bool = True, poll_seconds: float = 30.0,
           timeout_seconds: float | None = None, work_dir: str | None = None) -> int:
    """Package, upload, submit and (optionally) wait. ``plan_inputs`` are :func:`build_plan` kwargs."""
    import boto3

    from emr import waiter
    from emr.packaging import stage_artifacts
    from emr.s3 import parse_s3_uri, s3_client, upload_files

    plan = build_plan(**plan_inputs)  # validate everything before building anything
    s3 = s3_client(plan.account.region)
    check_s3_inputs(plan.inputs, s3)
    print(plan.estimate_line(), flush=True)
    work_dir = work_dir or os.path.join(project_root(), "build", "emr", plan.run_id)
    artifacts = stage_artifacts(work_dir, plan.configs, plan.values, plan.preset.python)
    wheel = next(name for name in artifacts if name.endswith(".whl"))
    plan = build_plan(**{**plan_inputs, "run_id": plan.run_id, "wheel_name": wheel})
    region = plan.account.region
    print(f"uploading {len(artifacts)} artifacts to {plan.artifacts_uri}/", flush=True)
    upload_files([(path, name) for name, path in artifacts.items()], plan.artifacts_uri, client=s3)

    emr = boto3.client("emr", region_name=region)
    if plan.operation == "AddJobFlowSteps":
        cluster_id = plan.request["JobFlowId"]
        step_ids = emr.add_job_flow_steps(**plan.request)["StepIds"]
    else:
        cluster_id = emr.run_job_flow(**plan.request)["JobFlowId"]
        listed = emr.list_steps(ClusterId=cluster_id)["Steps"]
        step_ids = [s["Id"] for s in reversed(listed)]  # list_steps returns newest first
    names = {sid: s["Name"] for sid, s in zip(step_ids, plan.steps)}
    bucket, key = parse_s3_uri(f"{plan.run_uri}/launch.json")
    record = {"cluster_id": cluster_id, "step_ids": step_ids, "operation": plan.operation, "request": plan.request}
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(record, indent=1).encode())
    print(f"cluster {cluster_id}: https://{region}.console.aws.amazon.com/emr/home?region={region}"
          f"#/clusterDetails/{cluster_id}", flush=True)
    print(f"logs: {plan.account.log_uri}{cluster_id}/  run: {plan.run_uri}/", flush=True)
    if not wait:
        return 0
    started = time.monotonic()
    try:
        state = waiter.wait_for_cluster(emr, cluster_id, poll_seconds=poll_seconds,
                                        timeout_seconds=timeout_seconds)["Status"]["State"]
        print(f"cluster {cluster_id}: {state}", flush=True)
    except waiter.ClusterStartError as exc:
        print(f"run FAILED: {exc}", flush=True)
        print(waiter.cluster_failure_hint(emr.describe_cluster(ClusterId=cluster_id)["Cluster"], plan.account.log_uri),
              flush=True)
        return 1
    if timeout_seconds is not None:
        timeout_seconds = max(0.0, timeout_seconds - (time.monotonic() - started))
    states = waiter.wait_for_steps(emr, cluster_id, step_ids,
                                   on_change=_print_step(names, plan.account.log_uri, cluster_id),
                                   poll_seconds=poll_seconds, timeout_seconds=timeout_seconds)
    ok = waiter.all_completed(states)
    print(f"{'all steps COMPLETED' if ok else 'run FAILED'}: {json.dumps(states)}", flush=True)
    if not ok:
        print(waiter.cluster_failure_hint(emr.describe_cluster(ClusterId=cluster_id)["Cluster"], plan.account.log_uri),
              flush=True)
    return 0 if ok else 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dhs emr", description=plain_text(__doc__),
                                     epilog="Arguments after `--` go to every job; {run} becomes the run's URI.")
    parser.add_argument("pipeline", choices=sorted(pipelines.PIPELINES))
    parser.add_argument("--preset", required=True, help="cluster preset name (emr/presets.yaml)")
    parser.add_argument("--presets", default=None, help="alternative presets YAML")
    parser.add_argument("--account", default=os.environ.get("DHS_EMR_ACCOUNT"),
                        help="account settings YAML (default $DHS_EMR_ACCOUNT)")
    parser.add_argument("--s3-prefix", default=os.environ.get("DHS_S3_PREFIX"),
                        help="s3://bucket/prefix for runs (default $DHS_S3_PREFIX)")
    parser.add_argument("--region")
    parser.add_argument("--subnet-id")
    parser.add_argument("--subnet-az", help="availability zone of --subnet-id (checked against the region)")
    parser.add_argument("--log-uri")
    parser.add_argument("--release-label", help=f"override the preset's release ({sorted(catalog.RELEASES)})")
    parser.add_argument("--config", dest="configs", action="append", default=[],
                        help="job config YAML, one per step in order (default configs/<job>*.yaml)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="config override passed to every job")
    parser.add_argument("--uri", dest="uris", action="append", default=[], metavar="KEY=URI",
                        help="input dataset for the {KEY} placeholders, e.g. tractor=s3://bucket/sweeps")
    parser.add_argument("--cluster-id", help="add the steps to this running cluster instead of creating one")
    parser.add_argument("--run-id")
    parser.add_argument("--dry-run", action="store_true",
                        help="check the inputs, print the requests and the estimate; no AWS call, nothing built")
    parser.add_argument("--rows", type=int, default=None,
                        help="input rows for the wall-time/cost estimate (default: counted from a local input)")
    parser.add_argument("--no-wait", action="store_true")
    parser.add_argument("--poll-seconds", type=float, default=30.0)
    parser.add_argument("--timeout-hours", type=float, default=None)
    return parser


def _account(args) -> AccountSettings:
    overrides = [f"{key}={value}" for key, value in (
        ("s3_prefix", args.s3_prefix), ("region", args.region), ("subnet_id", args.subnet_id),
        ("subnet_availability_zone", args.subnet_az), ("log_uri", args.log_uri)) if value]
    return load_config(AccountSettings, args.account, overrides)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    args = _parser().parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    inputs = dict(pipeline=args.pipeline, preset_name=args.preset, configs=args.configs,
                  overrides=args.overrides, extra_args=extra, uris=args.uris, run_id=args.run_id, cluster_id=args.cluster_id,
                  release_label=args.release_label, presets_uri=args.presets, dry_run=args.dry_run, rows=args.rows)
    try:
        inputs["account"] = _account(args)
        if args.dry_run:
            plan = build_plan(**inputs)
            if plan.account.s3_prefix == DRY_RUN_PREFIX:
                print(f"note: no --s3-prefix given; the requests use the placeholder {DRY_RUN_PREFIX}",
                      file=sys.stderr)
            print(json.dumps(plan.describe(), indent=2))
            print(plan.estimate_line(), file=sys.stderr)
            return 0
        inputs["dry_run"] = False
        timeout = args.timeout_hours * 3600 if args.timeout_hours else None
        return launch(inputs, wait=not args.no_wait, poll_seconds=args.poll_seconds, timeout_seconds=timeout)
    except (ConfigError, ValueError, RuntimeError, OSError) as exc:
        print(error_line("dhs emr", exc), file=sys.stderr)
        return 2


if __name__ == "__main__":
    from dhs_gen.entrypoint import run_main

    sys.exit(run_main(main))
