"""The job chains behind ``make emr-<name>`` / ``make smoke-<name>``, and how their steps get arguments.

A step runs ``jobs/<script>`` with ``--config <its config>``, the user's ``--set`` overrides and
argument templates in which ``{run}`` is the run's URI (``s3://<prefix>/runs/<run id>`` on EMR,
``build/smoke/<name>`` locally), so one config serves both. A step's config defaults to
``configs/<stem>.yaml``, else the first ``configs/<stem>*.yaml``.
"""
from __future__ import annotations

import glob
import os
from typing import Dict, List, NamedTuple, Sequence, Tuple

from dhs_gen.config import ConfigError, read_yaml


class StepSpec(NamedTuple):
    """One step: its name, ``jobs/<script>``, config stem (None: job defaults) and argument templates."""

    name: str
    script: str
    config_stem: str | None
    args: Tuple[str, ...] = ()


PIPELINES: Dict[str, Tuple[StepSpec, ...]] = {
    "healthcheck": (StepSpec("healthcheck", "healthcheck.py", None, ("--output", "{run}/healthcheck")),),
    "phase4c": (StepSpec("phase4c", "phase4c_inject.py", "phase4c"),),
    "negatives": (StepSpec("negative-pool", "negative_pool.py", "negative_pool"),
                  StepSpec("sample-negatives", "sample_negatives.py", "sample_negatives")),
    "cutouts": (StepSpec("cutouts", "cutouts.py", "cutouts"),),
    "compact": (StepSpec("compact", "compact.py", "compact"),),
}


def get_pipeline(name: str) -> Tuple[StepSpec, ...]:
    """The steps of pipeline ``name``; ConfigError listing the known ones otherwise."""
    if name not in PIPELINES:
        raise ConfigError(f"unknown pipeline {name!r}; known: {', '.join(sorted(PIPELINES))}")
    return PIPELINES[name]


def check_scripts(steps: Sequence[StepSpec], root: str) -> None:
    """ConfigError naming any step script missing from the checkout's ``jobs/``."""
    missing = [f"jobs/{s.script}" for s in steps if not os.path.isfile(os.path.join(root, "jobs", s.script))]
    if missing:
        raise ConfigError(f"job script(s) not in this checkout: {', '.join(missing)}")


def find_config(stem: str, configs_dir: str) -> str:
    """``configs/<stem>.yaml`` if present, else the first ``configs/<stem>*.yaml``; ConfigError if none."""
    exact = os.path.join(configs_dir, f"{stem}.yaml")
    if os.path.isfile(exact):
        return exact
    found = sorted(glob.glob(os.path.join(configs_dir, f"{stem}*.yaml")))
    if not found:
        raise ConfigError(f"no config for step {stem!r}: expected {configs_dir}/{stem}*.yaml "
                          "(shipped with the job) or pass CONFIG=/--config")
    return found[0]


def resolve_configs(steps: Sequence[StepSpec], given: Sequence[str], configs_dir: str) -> List[str | None]:
    """Per step, an existing YAML config: as given (one per step, in order) or found by stem.

    A step without a config stem runs on its job's defaults (None) unless one is given.
    """
    if given and len(given) != len(steps):
        names = ", ".join(s.name for s in steps)
        raise ConfigError(f"{len(given)} config(s) given for {len(steps)} step(s) ({names}): give one per step")
    paths = list(given) or [find_config(s.config_stem, configs_dir) if s.config_stem else None for s in steps]
    for path in paths:
        if path is None:
            continue
        if not os.path.isfile(path):
            raise ConfigError(f"config file not found: {path}")
        read_yaml(path)
    return paths


def step_args(spec: StepSpec, config_ref: str | None, run_uri: str, overrides: Sequence[str] = (),
              extra_args: Sequence[str] = ()) -> List[str]:
    """The job's argument list: ``--config``, ``--set`` overrides, the step's and the user's args."""
    args = ["--config", config_ref] if config_ref else []
    for item in overrides:
        args += ["--set", item]
    return args + [a.replace("{run}", run_uri) for a in (*spec.args, *extra_args)]
