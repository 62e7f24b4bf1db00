"""What every Spark job shares: arguments, config loading, input and output checks, the session,
and the JSON summary.

The output rule (docs/reliability.md): every input and config value is checked on the driver
before any work; an output that is, contains or lies inside an input is refused; an existing
output is replaced only when it is this job's own earlier output (its ``_summary.json`` names the
job); the job writes into a hidden staging folder beside the output and the finished folder is
swapped into place, so a failed or killed run leaves the previous output untouched.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Callable, List, NamedTuple, Optional, Type

from dhs_gen import storage
from dhs_gen.config import StrictModel, apply_cli_values, cli_values, load_config, save_resolved_config
from dhs_gen.entrypoint import plain_text
from dhs_gen.log import get_logger, setup_logging

log = get_logger(__name__)


class JobInput(NamedTuple):
    """One dataset a job reads: ``pipeline`` datasets (written by a job of this project) must be
    complete (``_SUCCESS``, row count) unless ``--allow-partial``; external ones must exist."""

    role: str
    uri: Optional[str]  # noqa: UP045 (Python 3.9)
    pipeline: bool = True


def job_parser(description: str) -> argparse.ArgumentParser:
    """Argument parser with the options every job takes."""
    parser = argparse.ArgumentParser(description=plain_text(description))
    parser.add_argument("--config", help="YAML config path or URI (defaults apply when omitted)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set sampling.seed=7 (repeatable)")
    parser.add_argument("--master", default=None,
                        help="Spark master, e.g. local[2]; omit under spark-submit/EMR")
    parser.add_argument("--allow-partial", action="store_true",
                        help="read input datasets without a _SUCCESS marker (or whose row count differs "
                             "from their summary) with a warning instead of refusing them")
    parser.add_argument("--log-level", default=None)
    return parser


def check_inputs(inputs: List[JobInput], allow_partial: bool = False) -> None:
    """Refuse unfinished pipeline inputs and missing external ones (one-line DatasetError)."""
    for item in inputs:
        if not item.uri:
            continue
        if item.pipeline:
            storage.require_complete(item.uri, what=item.role, allow_partial=allow_partial)
        elif not storage.exists(item.uri):
            raise storage.DatasetError(f"{item.role} {item.uri} does not exist")


def _set_output(cfg, args, output_attr: str, uri: str):
    if hasattr(args, output_attr):
        setattr(args, output_attr, uri)
    if output_attr in type(cfg).model_fields:
        cfg = cfg.model_copy(update={output_attr: uri})
    return cfg


def _drop_unvouched_marker(output: str) -> None:
    """Spark's own (empty) ``_SUCCESS`` says the files were written, not that the job accepted
    them: only a marker the body wrote (:func:`dhs_gen.storage.mark_complete`, JSON) stays."""
    marker = storage.join_uri(output, storage.SUCCESS_MARKER)
    if storage.exists(marker) and not storage.read_bytes(marker).strip():
        storage.remove(marker)


def run_spark_job(name: str, argv, parser: argparse.ArgumentParser, config_model: Type[StrictModel],
                  body: Callable, output_attr: str = "output", *,
                  inputs: Callable[[argparse.Namespace, StrictModel], List[JobInput]] | None = None,
                  validate: Callable[[StrictModel, argparse.Namespace], None] | None = None,
                  stage_output: bool = True, own_entries: str | None = None) -> dict:
    """Parse ``argv``, load the config, check inputs and output, run ``body(spark, cfg, args)``.

    ``inputs(args, cfg)`` lists the datasets read; ``validate(cfg, args)`` checks config values on
    the driver (e.g. a provider kind the workers would otherwise reject). With ``stage_output``
    the body sees the staging folder as its output (``args.final_output`` is the real one);
    a resumable job that updates its output in place passes ``stage_output=False`` and the
    regex of its own entries (``own_entries``).

    ``body`` returns a JSON-able summary dict; it is written to ``<output>/_summary.json``
    (where the args/config name an output URI), printed as one JSON line on stdout, and returned.
    """
    from pyspark.sql import SparkSession

    from dhs_gen.spark import build_spark_session

    args = parser.parse_args(argv)
    setup_logging(args.log_level)
    cfg = load_config(config_model, args.config, args.overrides)
    given = cli_values(vars(args))
    cfg = apply_cli_values(cfg, given)  # _resolved_config.yaml records the flags' inputs too
    output = getattr(args, output_attr, None) or getattr(cfg, output_attr, None)
    listed = inputs(args, cfg) if inputs else []
    check_inputs(listed, getattr(args, "allow_partial", False))
    if validate:
        validate(cfg, args)
    target = output
    if output:
        storage.check_output(output, name, {i.role: i.uri for i in listed}, own_entries)
        args.final_output = output
        if stage_output:
            target = storage.staging_output(output)
            cfg = _set_output(cfg, args, output_attr, target)
    caller_session = SparkSession.getActiveSession()  # e.g. a test's shared session: never stop it
    spark = build_spark_session(f"dhs-{name}", master=args.master)
    started = time.time()
    try:
        summary = dict(body(spark, cfg, args))
    except BaseException:
        if target and target != output:
            storage.remove(target)
        raise
    finally:
        if args.master and caller_session is None:
            spark.stop()
    if target != output:  # a path the body reported inside its staging folder names the final output
        summary = json.loads(json.dumps(summary, default=str).replace(json.dumps(target)[1:-1],
                                                                       json.dumps(output)[1:-1]))
    summary.setdefault("job", name)
    summary.setdefault("inputs", {k: v for k, v in given.items() if k != output_attr})
    summary.setdefault("config_source", args.config)
    summary.setdefault("overrides", list(args.overrides))
    summary["wall_seconds"] = round(time.time() - started, 3)
    if output:
        _drop_unvouched_marker(target)
        save_resolved_config(cfg if target == output else _set_output(cfg, argparse.Namespace(), output_attr,
                                                                        output), target)
        storage.write_json(storage.join_uri(target, storage.SUMMARY_FILE), summary)
        if target != output:
            storage.swap_into_place(target, output)
    print(json.dumps(summary, sort_keys=True, default=str))
    sys.stdout.flush()
    return summary
