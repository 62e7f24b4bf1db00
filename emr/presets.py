"""Cluster presets and account settings: typed, validated before any AWS call.

A preset (``emr/presets.yaml``) says what to run on: release, region, node types and counts,
spot or on-demand, auto-termination, cluster Python. Account settings (``--account`` YAML,
see ``configs/emr_account.example.yaml``) say where: the S3 prefix for the run's artifacts and
outputs, the log URI, the subnet and its availability zone, roles, tags. Spark executor settings
are derived from the core node type so they always fit in what YARN has on the node.
"""
# ruff: noqa: UP045  (pydantic evaluates these annotations at runtime; EMR runs Python 3.9)
from __future__ import annotations

import re
from importlib import resources
from typing import Dict, List, Literal, Optional

import yaml
from pydantic import Field, field_validator, model_validator

from dhs_gen.config import ConfigError, StrictModel, parse_config
from emr import catalog

NUMBA_CACHE_DIR = "/tmp/numba_cache"
REGION_RE = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
SUBNET_RE = re.compile(r"^subnet-[0-9a-f]{8,17}$")


class NodeGroup(StrictModel):
    """One instance group: type, count, market and EBS volume [GiB] per node."""

    instance_type: str
    count: int = Field(1, ge=1, le=500)
    market: Literal["ON_DEMAND", "SPOT"] = "ON_DEMAND"
    ebs_gb: int = Field(64, ge=16, le=4096)

    @field_validator("instance_type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        catalog.instance_type(value)
        return value


class ClusterPreset(StrictModel):
    """A cluster shape. ``spark`` holds overrides of the derived spark-defaults settings."""

    description: str = ""
    release_label: str = "emr-7.13.0"
    region: str = "us-east-2"
    python: str = "3.11"
    master: NodeGroup
    core: NodeGroup
    executors_per_node: int = Field(2, ge=1, le=16)
    python_overhead_mb: int = Field(2048, ge=384)
    idle_timeout_minutes: int = Field(60, ge=1, le=10080)
    spark: Dict[str, str] = Field(default_factory=dict)

    @field_validator("release_label")
    @classmethod
    def _allowed_release(cls, value: str) -> str:
        catalog.release(value)
        return value

    @field_validator("region")
    @classmethod
    def _region_format(cls, value: str) -> str:
        if not REGION_RE.match(value):
            raise ValueError(f"{value!r} is not an AWS region name (e.g. us-east-2)")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ClusterPreset:
        if self.master.count != 1:
            raise ValueError("master.count must be 1")
        pythons = catalog.release(self.release_label).pythons
        if self.python not in pythons:
            raise ValueError(f"python {self.python} is not offered by {self.release_label} (has {list(pythons)})")
        return self

    @property
    def python_path(self) -> str:
        """The interpreter on the nodes that PySpark and the bootstrap use."""
        return f"/usr/bin/python{self.python}"

    def hourly_cost_usd(self) -> float:
        """On-demand cost per hour of the whole cluster [USD] (spot is usually cheaper)."""
        return (catalog.hourly_cost_usd(self.master.instance_type, self.master.count)
                + catalog.hourly_cost_usd(self.core.instance_type, self.core.count))


class AccountSettings(StrictModel):
    """Where runs go in the user's AWS account. Nothing here has a built-in default bucket."""

    s3_prefix: Optional[str] = None
    region: Optional[str] = None
    log_uri: Optional[str] = None
    subnet_id: Optional[str] = None
    subnet_availability_zone: Optional[str] = None
    service_role: str = "EMR_DefaultRole"
    job_flow_role: str = "EMR_EC2_DefaultRole"
    ec2_key_name: Optional[str] = None
    tags: Dict[str, str] = Field(default_factory=dict)


def load_presets(uri: Optional[str] = None) -> Dict[str, ClusterPreset]:
    """All presets from ``uri`` (default: the packaged ``emr/presets.yaml``), validated."""
    if uri:
        from dhs_gen.config import read_yaml

        data, source = read_yaml(uri), uri
    else:
        data = yaml.safe_load(resources.files("emr").joinpath("presets.yaml").read_text())
        source = "emr/presets.yaml"
    presets = data.get("presets") if isinstance(data, dict) else None
    if not isinstance(presets, dict) or not presets:
        raise ConfigError(f"{source}: expected a non-empty 'presets:' mapping")
    return {name: parse_config(ClusterPreset, body, f"{source}: preset {name!r}") for name, body in presets.items()}


def get_preset(name: str, uri: Optional[str] = None) -> ClusterPreset:
    """The preset ``name``; ConfigError listing the known presets otherwise."""
    presets = load_presets(uri)
    if name not in presets:
        raise ConfigError(f"unknown preset {name!r}; known presets: {', '.join(sorted(presets))}")
    return presets[name]


def parse_memory_mb(value: str) -> int:
    """A JVM/Spark memory string ('4g', '2048m', '512k', plain MiB) in MiB."""
    match = re.fullmatch(r"\s*(\d+)\s*([kmgt]?)b?\s*", str(value).lower())
    if not match:
        raise ConfigError(f"not a memory size: {value!r}")
    number, unit = int(match.group(1)), match.group(2) or "m"
    return {"k": number // 1024, "m": number, "g": number * 1024, "t": number * 1024 * 1024}[unit]


def spark_settings(preset: ClusterPreset) -> Dict[str, str]:
    """spark-defaults derived from the core node type, then the preset's overrides, checked to fit.

    Per node: ``executors_per_node`` executors, each with vCPU/executors cores and a container of
    YARN memory/executors, of which ``python_overhead_mb`` is memoryOverhead (the Python workers
    live there) and the rest, rounded down to whole GiB, the JVM heap (m5.xlarge: 4g, m5.2xlarge: 10g).
    The driver (cluster mode) takes one executor-sized container.
    """
    node = catalog.instance_type(preset.core.instance_type)
    per_node = preset.executors_per_node
    cores = max(1, node.vcpu // per_node)
    heap_gib = (node.yarn_memory_mb // per_node - preset.python_overhead_mb) // 1024
    if heap_gib < 1:
        raise ConfigError(f"{preset.core.instance_type}: {per_node} executors/node leave under 1 GiB of heap each")
    executors = preset.core.count * per_node - 1
    settings = {
        "spark.dynamicAllocation.enabled": "false",
        "spark.executor.instances": str(max(1, executors)),
        "spark.executor.cores": str(cores),
        "spark.executor.memory": f"{heap_gib}g",
        "spark.executor.memoryOverhead": f"{preset.python_overhead_mb}m",
        "spark.driver.cores": str(cores),
        "spark.driver.memory": f"{heap_gib}g",
        "spark.driver.memoryOverhead": f"{preset.python_overhead_mb}m",
        "spark.sql.shuffle.partitions": str(max(8, 2 * cores * max(1, executors))),
        "spark.sql.ansi.enabled": "false",
        "spark.yarn.maxAppAttempts": "1",
        "spark.executorEnv.NUMBA_CACHE_DIR": NUMBA_CACHE_DIR,
        "spark.yarn.appMasterEnv.NUMBA_CACHE_DIR": NUMBA_CACHE_DIR,
        "spark.yarn.appMasterEnv.PYSPARK_PYTHON": preset.python_path,
        "spark.executorEnv.PYSPARK_PYTHON": preset.python_path,
    }
    settings.update(preset.spark)
    check_fits(settings, preset)
    return settings


def check_fits(settings: Dict[str, str], preset: ClusterPreset) -> None:
    """ConfigError when executors (heap + overhead, cores) exceed what the core node has."""
    node_name = preset.core.instance_type
    node = catalog.instance_type(node_name)
    per_node = preset.executors_per_node
    for role in ("executor", "driver"):
        heap = parse_memory_mb(settings[f"spark.{role}.memory"])
        overhead = parse_memory_mb(settings[f"spark.{role}.memoryOverhead"])
        if (heap + overhead) * per_node > node.yarn_memory_mb:
            raise ConfigError(
                f"spark.{role}.memory={settings[f'spark.{role}.memory']} + memoryOverhead="
                f"{settings[f'spark.{role}.memoryOverhead']} = {heap + overhead} MiB x {per_node} per node exceeds "
                f"the {node.yarn_memory_mb} MiB YARN has on {node_name}")
        if int(settings[f"spark.{role}.cores"]) * per_node > node.vcpu:
            raise ConfigError(f"spark.{role}.cores={settings[f'spark.{role}.cores']} x {per_node} per node exceeds "
                              f"the {node.vcpu} vCPUs of {node_name}")


def configurations(preset: ClusterPreset) -> List[dict]:
    """EMR Configurations: spark-defaults, and PYSPARK_PYTHON / NUMBA_CACHE_DIR via spark-env."""
    env = {"PYSPARK_PYTHON": preset.python_path, "PYSPARK_DRIVER_PYTHON": preset.python_path,
           "NUMBA_CACHE_DIR": NUMBA_CACHE_DIR}
    return [
        {"Classification": "spark-defaults", "Properties": spark_settings(preset)},
        {"Classification": "spark-env", "Properties": {},
         "Configurations": [{"Classification": "export", "Properties": env}]},
    ]


def resolve_account(account: AccountSettings, preset: ClusterPreset, *, require_s3: bool = True) -> AccountSettings:
    """Account settings with region and log URI filled in, checked against the preset.

    Errors (all before any AWS call): missing or non-s3:// prefix / log URI, malformed region or
    subnet, and a subnet whose availability zone is not in the run's region.
    """
    region = account.region or preset.region
    if not REGION_RE.match(region):
        raise ConfigError(f"{region!r} is not an AWS region name (e.g. us-east-2)")
    if account.s3_prefix is None:
        if require_s3:
            raise ConfigError("no S3 prefix: give --s3-prefix s3://BUCKET/PREFIX (or s3_prefix in --account)")
    elif not re.match(r"^s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/.*)?$", account.s3_prefix):
        raise ConfigError(f"s3_prefix {account.s3_prefix!r} must be an s3://bucket/prefix URI")
    s3_prefix = account.s3_prefix.rstrip("/") if account.s3_prefix else None
    log_uri = account.log_uri or (f"{s3_prefix}/emr-logs/" if s3_prefix else None)
    if log_uri and not log_uri.startswith("s3://"):
        raise ConfigError(f"log_uri {log_uri!r} must be an s3:// URI")
    if account.subnet_id:
        if not SUBNET_RE.match(account.subnet_id):
            raise ConfigError(f"subnet_id {account.subnet_id!r} is not a subnet id (subnet-0123abcd...)")
        zone = account.subnet_availability_zone
        if not zone:
            raise ConfigError(f"subnet {account.subnet_id}: give subnet_availability_zone (e.g. {region}a) "
                              "so the region can be checked before launch")
        if not re.fullmatch(re.escape(region) + r"[a-z]", zone):
            raise ConfigError(f"region/subnet mismatch: subnet {account.subnet_id} is in {zone}, "
                              f"not in region {region}")
    return account.model_copy(update={"region": region, "s3_prefix": s3_prefix,
                                      "log_uri": log_uri and log_uri.rstrip("/") + "/"})
