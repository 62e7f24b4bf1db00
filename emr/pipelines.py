"""The job chains behind ``make emr-<name>`` / ``make smoke-<name>``, and how their steps get arguments.

A step runs ``jobs/<script>`` with ``--config <its config>``, the user's ``--set`` overrides, and
argument templates whose placeholders are filled from ``{run}`` (the run's URI: ``s3://<prefix>/
runs/<run id>`` on EMR, ``build/smoke/<name>`` locally) and the user's ``--uri KEY=URI`` inputs
(``{tractor}``, ``{positives}``, ``{manifest}``, ``{cutouts}``, ``{input}``). A step's outputs go under ``{run}``, so
later steps of the chain find them there. Arguments after ``--`` come last (argparse keeps the
last value, so they can override a template). A step's config defaults to ``configs/<stem>.yaml``
on EMR and ``configs/<stem>_demo.yaml`` for local smoke runs, else the first ``configs/<stem>*.yaml``
(never a demo config on EMR); the same placeholders are filled in the config text.
"""
from __future__ import annotations

import glob
import os
import re
from typing import Dict, List, NamedTuple, Sequence, Tuple

from dhs_gen.config import ConfigError, read_yaml

_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


class StepSpec(NamedTuple):
    """One step: name, ``jobs/<script>``, config stem (None: the job's defaults), argument templates.

    ``optional`` holds (flag, template) pairs dropped when their placeholder is not supplied.
    ``demo_section``: the key under which a ``<stem>_demo.yaml`` holds this job's config (the
    catalogue's demo file wraps the job config in ``catalog:``).
    ``needs``: the input datasets the step cannot run without, as (placeholder, config key that
    may name it instead, or None): the launcher refuses a run where one is neither given nor
    exists. ``rate``: the key of its measured per-core rate in :data:`RATES` (None: not measured).
    """

    name: str
    script: str
    config_stem: str | None
    args: Tuple[str, ...] = ()
    optional: Tuple[Tuple[str, str], ...] = ()
    demo_section: str | None = None
    needs: Tuple[Tuple[str, str | None], ...] = ()
    rate: str | None = None


_NEGATIVE_POOL = StepSpec("negative-pool", "negative_pool.py", "catalog",
                          ("--input", "{tractor}", "--output", "{run}/negatives_pool"), demo_section="catalog",
                          needs=(("tractor", None),))
_SAMPLE_NEGATIVES = StepSpec("sample-negatives", "sample_negatives.py", "catalog",
                             ("--input", "{run}/negatives_pool", "--output", "{run}/sampled_negatives"),
                             (("--positives", "{positives}"),), demo_section="catalog", rate="sampling")
_MOCK_CATALOG = StepSpec("mock-catalog", "mock_catalog.py", "mock_catalog",
                         ("--set", "n_rows=5000", "--output", "{run}/mock_catalog"))
_PHASE4A = StepSpec("phase4a", "phase4a_manifest.py", "phase4a",
                    ("--set", "manifest.host_fraction=0.03", "--output", "{run}/phase4a_manifest"))

PIPELINES: Dict[str, Tuple[StepSpec, ...]] = {
    "healthcheck": (StepSpec("healthcheck", "healthcheck.py", None, ("--output", "{run}/healthcheck")),),
    "phase4c": (StepSpec("phase4c", "phase4c_inject.py", "phase4c", ("--output", "{run}/phase4c"),
                         (("--input", "{manifest}"), ("--cutouts", "{cutouts}")),
                         needs=(("manifest", "manifest_uri"),), rate="phase4c"),),
    "negatives": (_NEGATIVE_POOL, _SAMPLE_NEGATIVES),
    "cutouts": (StepSpec("cutouts", "cutouts.py", "cutouts", ("--output", "{run}/cutouts"),
                         (("--input", "{manifest}"),), needs=(("manifest", "manifest"),)),),
    "compact": (StepSpec("compact", "compact.py", "catalog", ("--input", "{input}", "--output", "{run}/compacted"),
                         demo_section="catalog", needs=(("input", None),)),),
}

# Local smoke runs make missing inputs from the mock survey, per pipeline:
# placeholder -> (steps run first, the placeholders they provide).
SMOKE_INPUTS: Dict[str, Dict[str, Tuple[Tuple[StepSpec, ...], Dict[str, str]]]] = {
    "negatives": {"tractor": ((_MOCK_CATALOG,), {"tractor": "{run}/mock_catalog"})},
    "phase4c": {"manifest": ((_PHASE4A,), {"manifest": "{run}/phase4a_manifest"})},
    "cutouts": {"manifest": ((_MOCK_CATALOG, _NEGATIVE_POOL, _SAMPLE_NEGATIVES),
                             {"tractor": "{run}/mock_catalog", "manifest": "{run}/sampled_negatives"})},
    "compact": {"input": ((_MOCK_CATALOG, _NEGATIVE_POOL),
                          {"tractor": "{run}/mock_catalog", "input": "{run}/negatives_pool"})},
}


class Rate(NamedTuple):
    """A step's measured throughput per executor core: the benchmark entry it is read from
    (``build/bench/results.json``, written by ``make bench``) and the documented value used when
    no results file is present."""

    bench_name: str
    default: float
    unit: str
    default_source: str


RATES: Dict[str, Rate] = {
    "phase4c": Rate("phase4c.spark_local1_stamps_per_cpu_s", 345.0, "rows/s/core",
                    "docs/injection_jobs.md (make bench 2026-11-25: Spark local[1], whole 2304-row pass)"),
    "sampling": Rate("sampling_stratified_rows_per_s_per_core", 9.1e4, "rows/s/core",
                     "docs/catalog.md (make bench: 2M-row mock pool, local[2])"),
}
BENCH_RESULTS = os.path.join("build", "bench", "results.json")


def measured_rates(results_path: str | None = BENCH_RESULTS) -> Dict[str, Tuple[float, str]]:
    """``{rate key: (rows/s/core, source)}``: from the benchmark results file when it has the
    entry, else the documented default."""
    import json

    entries: Dict[str, float] = {}
    if results_path and os.path.isfile(results_path):
        with open(results_path, encoding="utf-8") as fh:
            data = json.load(fh)
        rows = data.get("results", data) if isinstance(data, dict) else data
        entries = {r["name"]: float(r["value"]) for r in rows if isinstance(r, dict) and "name" in r}
    return {key: ((entries[rate.bench_name], f"{results_path}: {rate.bench_name}") if rate.bench_name in entries
                  else (rate.default, rate.default_source)) for key, rate in RATES.items()}


def needed_inputs(steps: Sequence[StepSpec], values: Dict[str, str],
                  step_configs: Sequence[dict | None]) -> Dict[str, str]:
    """``{placeholder: URI}`` of every input the steps cannot run without (given with ``--uri`` or
    named in the step's config); ConfigError listing every missing one and how to give it."""
    found: Dict[str, str] = {}
    missing: List[str] = []
    for spec, config in zip(steps, step_configs):
        for key, config_key in spec.needs:
            uri = values.get(key) or (config or {}).get(config_key or "") or None
            if uri:
                found.setdefault(key, uri)
            else:
                alternative = f" or set {config_key} in its config" if config_key else ""
                missing.append(f"step {spec.name} needs input {{{key}}}: pass --uri {key}=URI "
                               f"(make: URIS=\"{key}=URI\"){alternative}")
    if missing:
        raise ConfigError("; ".join(missing))
    return found


def estimate(steps: Sequence[StepSpec], rows: int | None, cores: int, usd_per_hour: float,
             rates: Dict[str, Tuple[float, str]]) -> dict:
    """Wall time and on-demand cost of the steps that have a measured rate, for ``rows`` input rows
    on ``cores`` executor cores: hours = rows / (rate x cores) / 3600 per step (rows of the
    pipeline's main input; an upper bound for steps that read a filtered intermediate)."""
    per_step, unmeasured = [], []
    for spec in steps:
        if spec.rate is None:
            unmeasured.append(spec.name)
            continue
        rate, source = rates[spec.rate]
        hours = None if rows is None else rows / (rate * cores) / 3600.0
        per_step.append({"step": spec.name, "rows": rows, "rows_per_s_per_core": rate, "rate_source": source,
                         "cores": cores, "hours": None if hours is None else round(hours, 4)})
    known = [s["hours"] for s in per_step if s["hours"] is not None]
    total = round(sum(known), 4) if per_step and len(known) == len(per_step) else None
    return {"steps": per_step, "total_hours": total,
            "usd_on_demand": None if total is None else round(total * usd_per_hour, 2),
            "not_estimated": unmeasured,
            "excludes": "cluster start-up and bootstrap time; steps without a measured rate"}


def get_pipeline(name: str) -> Tuple[StepSpec, ...]:
    """The steps of pipeline ``name``; ConfigError listing the known ones otherwise."""
    if name not in PIPELINES:
        raise ConfigError(f"unknown pipeline {name!r}; known: {', '.join(sorted(PIPELINES))}")
    return PIPELINES[name]


def parse_uris(items: Sequence[str]) -> Dict[str, str]:
    """``["tractor=s3://b/sweeps", ...]`` -> ``{"tractor": "s3://b/sweeps"}``."""
    uris = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not re.fullmatch(r"[a-z_]+", key) or not value or key == "run":
            raise ConfigError(f"--uri {item!r}: expected KEY=URI with KEY in [a-z_] (not 'run')")
        uris[key] = value
    return uris


def inputs_used(steps: Sequence[StepSpec]) -> List[str]:
    """Placeholders (other than run) the steps' arguments use, required or optional, in first-use order."""
    found: List[str] = []
    for spec in steps:
        for arg in (*spec.args, *(template for _, template in spec.optional)):
            found += [k for k in _PLACEHOLDER.findall(arg) if k != "run" and k not in found]
    return found


def fill(template: str, values: Dict[str, str]) -> str:
    """Replace every ``{key}`` of ``values`` in ``template`` (other braces are left alone)."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)


def check_scripts(steps: Sequence[StepSpec], root: str) -> None:
    """ConfigError naming any step script missing from the checkout's ``jobs/``."""
    missing = [f"jobs/{s.script}" for s in steps if not os.path.isfile(os.path.join(root, "jobs", s.script))]
    if missing:
        raise ConfigError(f"job script(s) not in this checkout: {', '.join(missing)}")


def find_config(stem: str, configs_dir: str, demo: bool = False) -> str:
    """``configs/<stem>.yaml`` (``<stem>_demo.yaml`` first when ``demo``), else the first
    ``configs/<stem>*.yaml`` (never a ``_demo`` one for a cluster run); ConfigError if none."""
    for name in ([f"{stem}_demo.yaml"] if demo else []) + [f"{stem}.yaml"]:
        if os.path.isfile(os.path.join(configs_dir, name)):
            return os.path.join(configs_dir, name)
    found = sorted(p for p in glob.glob(os.path.join(configs_dir, f"{stem}*.yaml"))
                   if demo or not p.endswith("_demo.yaml"))
    if not found:
        raise ConfigError(f"no config found: expected {configs_dir}/{stem}*.yaml "
                          "(shipped with the job) or pass CONFIG=/--config")
    return found[0]


def resolve_configs(steps: Sequence[StepSpec], given: Sequence[str], configs_dir: str,
                    demo: bool = False) -> List[str | None]:
    """Per step, an existing YAML config: as given (one per step, in order) or found by stem.

    A step without a config stem runs on its job's defaults (None) unless one is given.
    """
    if given and len(given) != len(steps):
        names = ", ".join(s.name for s in steps)
        raise ConfigError(f"{len(given)} config(s) given for {len(steps)} step(s) ({names}): give one per step")
    paths = list(given) or [find_config(s.config_stem, configs_dir, demo) if s.config_stem else None
                            for s in steps]
    for path in paths:
        if path is None:
            continue
        if not os.path.isfile(path):
            raise ConfigError(f"config file not found: {path}")
        read_yaml(path)
    return paths


def step_args(spec: StepSpec, config_ref: str | None, values: Dict[str, str], overrides: Sequence[str] = (),
              extra_args: Sequence[str] = ()) -> List[str]:
    """The job's argument list: ``--config``, ``--set`` overrides, the step's templates, the user's args.

    ``values`` fills the placeholders (``run`` and the ``--uri`` inputs); ConfigError names a
    required one that is missing.
    """
    args = ["--config", config_ref] if config_ref else []
    for item in overrides:
        args += ["--set", item]
    for template in spec.args:
        missing = [k for k in _PLACEHOLDER.findall(template) if k not in values]
        if missing:
            raise ConfigError(f"step {spec.name} needs {{{missing[0]}}}: pass --uri {missing[0]}=URI "
                              f"(make: URIS=\"{missing[0]}=URI\")")
        args.append(fill(template, values))
    for flag, template in spec.optional:
        if all(k in values for k in _PLACEHOLDER.findall(template)):
            args += [flag, fill(template, values)]
    return args + [fill(a, values) for a in extra_args]
