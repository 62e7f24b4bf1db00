"""What every Spark job shares: arguments, config loading, the session, and the JSON summary."""
from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Callable, Type

from dhs_gen.config import StrictModel, apply_cli_values, cli_values, load_config, save_resolved_config
from dhs_gen.entrypoint import plain_text
from dhs_gen.log import get_logger, setup_logging
from dhs_gen.storage import join_uri, write_json

log = get_logger(__name__)


def job_parser(description: str) -> argparse.ArgumentParser:
    """Argument parser with the options every job takes."""
    parser = argparse.ArgumentParser(description=plain_text(description))
    parser.add_argument("--config", help="YAML config path or URI (defaults apply when omitted)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set sampling.seed=7 (repeatable)")
    parser.add_argument("--master", default=None,
                        help="Spark master, e.g. local[2]; omit under spark-submit/EMR")
    parser.add_argument("--log-level", default=None)
    return parser


def run_spark_job(name: str, argv, parser: argparse.ArgumentParser, config_model: Type[StrictModel],
                  body: Callable, output_attr: str = "output") -> dict:
    """Parse ``argv``, load the config, build the session, run ``body(spark, cfg, args)``.

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
    caller_session = SparkSession.getActiveSession()  # e.g. a test's shared session: never stop it
    spark = build_spark_session(f"dhs-{name}", master=args.master)
    started = time.time()
    try:
        summary = dict(body(spark, cfg, args))
    finally:
        if args.master and caller_session is None:
            spark.stop()
    summary.setdefault("job", name)
    summary.setdefault("inputs", {k: v for k, v in given.items() if k != output_attr})
    summary.setdefault("config_source", args.config)
    summary.setdefault("overrides", list(args.overrides))
    summary["wall_seconds"] = round(time.time() - started, 3)
    output = getattr(args, output_attr, None) or getattr(cfg, output_attr, None)
    if output:
        save_resolved_config(cfg, output)
        write_json(join_uri(output, "_summary.json"), summary)
    print(json.dumps(summary, sort_keys=True, default=str))
    sys.stdout.flush()
    return summary
