"""Stratified negative sampling per (nobs_z_bin, type_bin), N1:N2 mix, hash-deterministic (no rand/limit).

Reads the ``negatives_pool`` dataset (and the positives, whose matched strata set the targets,
unless ``sampling.target_total`` is given); writes ``sampled_negatives`` (partitioned by split),
``_report.json`` (per stratum and pool: available, requested, quota, taken, shortfall) and the
summary with the sampling gates. Exit status 1 when a gate fails (then no _SUCCESS marker).
"""
from __future__ import annotations

import sys

from dhs_gen.catalog.config import CatalogConfig
from dhs_gen.entrypoint import add_flag
from jobs.common import JobInput, job_parser, run_spark_job


def _body(spark, cfg: CatalogConfig, args) -> dict:
    from dhs_gen.catalog.sampling import report_records, sample_spark, strata_of_positives, summarize
    from dhs_gen.schemas import get_dataset
    from dhs_gen.storage import join_uri, mark_complete, read_parquet, to_file_uri, write_json

    strata = None
    if args.positives:
        strata = strata_of_positives(read_parquet(args.positives, columns=["status", "type", "nobs_z_bin"]).to_pandas())
    pool = spark.read.parquet(to_file_uri(args.pool))
    sampled, report, passes = sample_spark(spark, pool, cfg.sampling, strata)
    names = get_dataset("sampled_negatives").schema.names
    sampled.select(*names).write.mode("overwrite").partitionBy("split").parquet(to_file_uri(args.output))
    rows_out = spark.read.parquet(to_file_uri(args.output)).count()
    sampled.unpersist()
    summary, gates = summarize(report, cfg.sampling)
    summary.update({"rows_out": rows_out, "prefilter_passes": passes, "seed": cfg.sampling.seed,
                    "positives_in_strata": None if strata is None else len(strata),
                    "gates": [g.to_dict() for g in gates], "gates_passed": all(g.passed for g in gates),
                    "enforce_gates": cfg.enforce_gates})
    write_json(join_uri(args.output, "_report.json"), report_records(report))
    if summary["gates_passed"] or not cfg.enforce_gates:
        mark_complete(args.output, summary)
    return summary


def main(argv=None) -> int:
    parser = job_parser(__doc__.splitlines()[0])
    add_flag(parser, "--input", "--pool", dest="pool", metavar="URI", required=True, help="negatives_pool dataset URI")
    parser.add_argument("--positives", help="positives dataset URI (targets = ratio x positives per stratum)")
    parser.add_argument("--output", required=True, help="output sampled_negatives dataset URI")
    summary = run_spark_job("sample_negatives", argv, parser, CatalogConfig, _body,
                            inputs=lambda a, c: [JobInput("pool", a.pool), JobInput("positives", a.positives)])
    ok = summary["rows_out"] == summary["taken"] and (summary["gates_passed"] or not summary["enforce_gates"])
    return 0 if ok else 1


if __name__ == "__main__":
    from dhs_gen.entrypoint import run_main

    sys.exit(run_main(main))
