"""Phase 4d: proxy completeness (θ_E/PSF and arc SNR) by θ_E bin with Wilson intervals.

Reads the stamps dataset's metric columns, flags each row with
:func:`dhs_gen.injection.proxy_completeness.proxy_flags`, sums the flags per θ_E bin in Spark, and
writes the small ``completeness`` table (one Parquet file) with
:func:`completeness_from_counts`.
"""
from __future__ import annotations

import sys
from typing import Optional

from pydantic import Field

from dhs_gen.config import StrictModel
from dhs_gen.entrypoint import add_flag
from dhs_gen.injection.proxy_completeness import (
    INPUT_COLUMNS,
    ProxyConfig,
    completeness_from_counts,
    count_columns,
    flags_schema,
    proxy_flags,
)
from jobs.common import JobInput, job_parser, run_spark_job


class Phase4dConfig(StrictModel):
    stamps_uri: Optional[str] = None  # noqa: UP045
    proxy: ProxyConfig = Field(default_factory=ProxyConfig)


def _body(spark, cfg: Phase4dConfig, args) -> dict:
    from pyspark.sql import functions as F

    from dhs_gen.spark import map_arrow_batches
    from dhs_gen.storage import join_uri, mark_complete, to_file_uri, write_parquet

    stamps_uri = args.stamps or cfg.stamps_uri
    if not stamps_uri:
        raise SystemExit("phase4d: give --stamps or stamps_uri")
    pcfg = cfg.proxy
    stamps = spark.read.parquet(to_file_uri(stamps_uri)).select(*INPUT_COLUMNS)
    flags = map_arrow_batches(stamps, lambda b: proxy_flags(b, pcfg), flags_schema(pcfg))
    sums = flags.groupBy("theta_bin").agg(*[F.sum(c).alias(c) for c in count_columns(pcfg)]).toPandas()
    table = completeness_from_counts(sums, pcfg)
    write_parquet(table, join_uri(args.output, "completeness.parquet"))
    overall = table.filter(table.column("axis").to_numpy(zero_copy_only=False) == "all").to_pylist()
    summary = {"rows_in": stamps.count(), "rows_out": table.num_rows,
               "rows_valid": int(sums["n_all"].sum()) if len(sums) else 0,
               "overall": {f"{r['subset']}@x>={r['threshold_value']}": r["completeness"] for r in overall},
               "snr_rule": f"{pcfg.snr_column} >= {pcfg.snr_min}"}
    mark_complete(args.output, summary)
    return summary


def main(argv=None) -> int:
    parser = job_parser(__doc__.splitlines()[0])
    add_flag(parser, "--input", "--stamps", dest="stamps", metavar="URI",
             help="stamps dataset URI (or stamps_uri in the config)")
    parser.add_argument("--output", required=True, help="output folder URI for completeness.parquet")
    summary = run_spark_job("phase4d", argv, parser, Phase4dConfig, _body,
                            inputs=lambda a, c: [JobInput("stamps", a.stamps or c.stamps_uri)])
    return 0 if summary["rows_out"] > 0 else 1


if __name__ == "__main__":
    from dhs_gen.entrypoint import run_main

    sys.exit(run_main(main))
