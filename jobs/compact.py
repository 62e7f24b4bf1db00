"""Compaction: many small Parquet files -> few ~compact.target_file_mb files, optional split relabel.

Rows are verified after writing (counts, duplicate ids, id sets both ways) before the output is
marked complete.
"""
from __future__ import annotations

import sys

from dhs_gen.catalog.config import CatalogConfig
from jobs.common import JobInput, job_parser, run_spark_job


def compact_body(spark, cfg: CatalogConfig, args, relabel: bool = False) -> dict:
    """Compact ``args.input`` into ``args.output``; ``relabel`` forces the split relabel (jobs/splits.py)."""
    from dhs_gen.catalog.compaction import compact_spark
    from dhs_gen.storage import mark_complete

    update = {"relabel": True} if relabel else {}
    if args.id_column:
        update["id_column"] = args.id_column
    compact = cfg.compact.model_copy(update=update)
    summary = compact_spark(spark, args.input, args.output, compact, cfg.splits)
    if relabel:
        summary["splits"] = cfg.splits.model_dump()
    mark_complete(args.output, summary)
    return summary


def run(name: str, description: str, argv, relabel: bool) -> int:
    """Parse, run through run_spark_job, and return 0 when every row came out."""
    parser = job_parser(description)
    parser.add_argument("--input", required=True, help="input Parquet dataset URI")
    parser.add_argument("--output", required=True, help="output dataset URI")
    parser.add_argument("--id-column", help="row id column (default compact.id_column)")
    summary = run_spark_job(name, argv, parser, CatalogConfig,
                            lambda spark, cfg, args: compact_body(spark, cfg, args, relabel=relabel),
                            inputs=lambda args, cfg: [JobInput("input", args.input)])
    return 0 if summary["rows_out"] == summary["rows_in"] else 1


def main(argv=None) -> int:
    return run("compact", __doc__.splitlines()[0], argv, relabel=False)


if __name__ == "__main__":
    from dhs_gen.entrypoint import run_main

    sys.exit(run_main(main))
