"""Compaction: many small Parquet files -> few ~compact.target_file_mb files, optional split relabel.

Rows are verified after writing (counts, duplicate ids, id sets both ways) before the output is
marked complete.
"""
from __future__ import annotations

import sys

from dhs_gen.catalog.config import CatalogConfig
from jobs.common import job_parser, run_spark_job


def _body(spark, cfg: CatalogConfig, args) -> dict:
    from dhs_gen.catalog.compaction import compact_spark
    from dhs_gen.storage import mark_complete

    compact = cfg.compact
    if args.id_column:
        compact = compact.model_copy(update={"id_column": args.id_column})
    summary = compact_spark(spark, args.input, args.output, compact, cfg.splits)
    mark_complete(args.output, summary)
    return summary


def main(argv=None) -> int:
    parser = job_parser(__doc__.splitlines()[0])
    parser.add_argument("--input", required=True, help="input Parquet dataset URI (many small files)")
    parser.add_argument("--output", required=True, help="output dataset URI")
    parser.add_argument("--id-column", help="row id column (default compact.id_column)")
    summary = run_spark_job("compact", argv, parser, CatalogConfig, _body)
    return 0 if summary["rows_out"] == summary["rows_in"] else 1


if __name__ == "__main__":
    sys.exit(main())
