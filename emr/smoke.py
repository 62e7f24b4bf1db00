"""``make smoke-<name>``: run a pipeline's jobs through local ``spark-submit --master local[2]``.

The same steps, configs and argument templates as ``make emr-<name>``, with ``{run}`` set to a local
directory (default ``build/smoke/<name>``) instead of the S3 run prefix, so a config that works
here works on EMR. The job configs (``configs/<job>*.yaml``) point at the mock survey.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from typing import List, Sequence

import yaml

from dhs_gen.config import ConfigError, read_yaml
from emr import pipelines
from emr.packaging import project_root, render_config


def smoke_commands(pipeline: str, out_dir: str, *, configs: Sequence[str] = (), overrides: Sequence[str] = (),
                   extra_args: Sequence[str] = (), uris: Sequence[str] = (), master: str = "local[2]",
                   root: str | None = None) -> List[List[str]]:
    """The spark-submit argument lists, one per step; renders the configs into ``out_dir/configs``.

    Inputs not given with ``uris`` that the mock survey can provide (``pipelines.SMOKE_INPUTS``)
    are made by extra steps run first (their demo config if there is one, else job defaults).
    """
    root = root or project_root()
    steps = pipelines.get_pipeline(pipeline)
    pipelines.check_scripts(steps, root)
    configs_dir = os.path.join(root, "configs")
    paths = pipelines.resolve_configs(steps, list(configs), configs_dir, demo=True)
    out_dir = os.path.abspath(out_dir)
    values = {**pipelines.parse_uris(uris), "run": out_dir}
    preludes = []
    makers = pipelines.SMOKE_INPUTS.get(pipeline, {})
    for key in pipelines.inputs_used(steps):
        if key not in values and key in makers:
            chain, provides = makers[key]
            for spec in chain:
                try:
                    prelude_config = pipelines.find_config(spec.config_stem, configs_dir, demo=True)
                except ConfigError:
                    prelude_config = None
                preludes.append((spec, prelude_config))
            for name, template in provides.items():
                values.setdefault(name, pipelines.fill(template, values))
    pipelines.check_scripts([spec for spec, _ in preludes], root)
    commands = []
    n_preludes = len(preludes)
    for i, (spec, path) in enumerate([*preludes, *zip(steps, paths)]):
        rendered = None
        if path:
            rendered = os.path.join(out_dir, "configs", f"{spec.name}-{os.path.basename(path)}")
            render_config(path, rendered, values)
            _keep_demo_section(rendered, spec.demo_section)
        own = i >= n_preludes  # the user's overrides and args are for the pipeline's own steps
        args = pipelines.step_args(spec, rendered, values, overrides if own else (), extra_args if own else ())
        commands.append(["spark-submit", "--master", master, os.path.join(root, "jobs", spec.script), *args])
    return commands


def _keep_demo_section(path: str, section: str | None) -> None:
    """Reduce a rendered demo config to the job's section when the demo file wraps it (in place)."""
    if not section:
        return
    data = read_yaml(path)
    if isinstance(data.get(section), dict):
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(yaml.safe_dump(data[section], sort_keys=False))


def smoke_env() -> dict:
    """Environment for local spark-submit: this Python first on PATH, Spark bound to loopback."""
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    env.setdefault("PYSPARK_PYTHON", sys.executable)
    env.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    return env


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emr.smoke", description=__doc__.splitlines()[0],
                                     epilog="Arguments after `--` go to every job; {run} becomes --out.")
    parser.add_argument("pipeline", choices=sorted(pipelines.PIPELINES))
    parser.add_argument("--config", dest="configs", action="append", default=[])
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--uri", dest="uris", action="append", default=[], metavar="KEY=URI")
    parser.add_argument("--out", help="local run directory (default build/smoke/<pipeline>)")
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    args = parser.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    out_dir = args.out or os.path.join(project_root(), "build", "smoke", args.pipeline)
    try:
        commands = smoke_commands(args.pipeline, out_dir, configs=args.configs, overrides=args.overrides,
                                  extra_args=extra, uris=args.uris)
    except ConfigError as exc:
        print(f"smoke-{args.pipeline}: error: {exc}", file=sys.stderr)
        return 2
    env = smoke_env()
    for command in commands:
        print("+ " + " ".join(command), flush=True)
        done = subprocess.run(command, env=env, cwd=project_root())
        if done.returncode != 0:
            print(f"smoke-{args.pipeline}: {os.path.basename(command[3])} failed (exit {done.returncode})",
                  file=sys.stderr)
            return done.returncode
    print(f"smoke-{args.pipeline}: ok, outputs under {out_dir}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
