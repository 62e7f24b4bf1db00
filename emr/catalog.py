"""What the launcher knows about AWS without asking AWS: allowed EMR releases and instance types.

Prices are on-demand list prices in USD per hour for us-east-1 / us-east-2 (EC2 Linux + the EMR
uplift), read from the AWS pricing pages in November 2026; ``PRICES_AS_OF`` names the date.
YARN memory is EMR's default ``yarn.nodemanager.resource.memory-mb`` for the type (MiB).
"""
from __future__ import annotations

from typing import Dict, NamedTuple, Tuple

PRICES_AS_OF = "2026-11 (us-east-1/us-east-2 on-demand list prices)"


class Release(NamedTuple):
    spark: str
    pythons: Tuple[str, ...]
    java: str


class InstanceType(NamedTuple):
    vcpu: int
    memory_gib: int
    yarn_memory_mb: int
    ec2_usd_per_hour: float
    emr_usd_per_hour: float


# Allow-list: releases whose Spark the jobs are tested against (pyspark 3.5.6 locally); Spark 4 as an option.
RELEASES: Dict[str, Release] = {
    "emr-7.13.0": Release(spark="3.5.6", pythons=("3.9", "3.11"), java="17"),
    "emr-spark-8.0.0": Release(spark="4.0.2", pythons=("3.9", "3.11"), java="17"),
}

INSTANCE_TYPES: Dict[str, InstanceType] = {
    "m5.xlarge": InstanceType(4, 16, 12288, 0.192, 0.048),
    "m5.2xlarge": InstanceType(8, 32, 24576, 0.384, 0.096),
    "m5.4xlarge": InstanceType(16, 64, 57344, 0.768, 0.192),
    "r5.2xlarge": InstanceType(8, 64, 57344, 0.504, 0.126),
    "c5.2xlarge": InstanceType(8, 16, 12288, 0.340, 0.085),
}


def release(label: str) -> Release:
    """The allow-listed release ``label``; ValueError naming the allowed ones otherwise."""
    if label not in RELEASES:
        raise ValueError(f"release label {label!r} is not allowed; choose one of {sorted(RELEASES)}")
    return RELEASES[label]


def instance_type(name: str) -> InstanceType:
    """The catalogued instance type ``name``; ValueError naming the known ones otherwise."""
    if name not in INSTANCE_TYPES:
        raise ValueError(f"instance type {name!r} is not in the catalogue; known: {sorted(INSTANCE_TYPES)}")
    return INSTANCE_TYPES[name]


def hourly_cost_usd(name: str, count: int = 1) -> float:
    """On-demand EC2 + EMR cost per hour [USD] of ``count`` nodes of type ``name``."""
    spec = instance_type(name)
    return count * (spec.ec2_usd_per_hour + spec.emr_usd_per_hour)
