"""Negative pool: pool cuts, 11" exclusion around every lenscat lens (HEALPix join), N1/N2 categories.

Reads a Tractor/sweep Parquet dataset; writes the rows passing every cut as the
``negatives_pool`` dataset (partitioned by split) and a summary counting every input row by
its ``pool_status`` (ok or the first failed cut).
"""
from __future__ import annotations

import sys

from dhs_gen.catalog.config import CatalogConfig
from dhs_gen.entrypoint import add_flag
from jobs.common import JobInput, job_parser, run_spark_job


def _body(spark, cfg: CatalogConfig, args) -> dict:
    from pyspark.sql import functions as F

    from dhs_gen.catalog.crossmatch import pairs_within_spark
    from dhs_gen.catalog.lenscat import load_lenscat
    from dhs_gen.catalog.pool import NEAR_LENS, pool_batch, pool_output_schema
    from dhs_gen.catalog.tractor import read_tractor_spark
    from dhs_gen.schemas import get_dataset
    from dhs_gen.spark import map_arrow_batches, value_counts
    from dhs_gen.storage import mark_complete, to_file_uri

    pool_cfg, split = cfg.pool, cfg.splits
    tractor = read_tractor_spark(spark, args.tractor)
    rows_in = tractor.count()
    staged = map_arrow_batches(tractor, lambda b: pool_batch(b, pool_cfg, split), pool_output_schema()).persist()
    lenses = load_lenscat(cfg.positives.catalog)
    ok = staged.filter(F.col("pool_status") == "ok").select("galaxy_id", "ra", "dec")
    near = (pairs_within_spark(spark, ok, lenses, pool_cfg.effective_cuts().exclusion_radius_arcsec, "name",
                               pool_cfg.join_nside)
            .select("galaxy_id").distinct().withColumn("_near", F.lit(True)))
    marked = (staged.join(near, on="galaxy_id", how="left")
              .withColumn("pool_status", F.when(F.col("_near") & (F.col("pool_status") == "ok"), F.lit(NEAR_LENS))
                          .otherwise(F.col("pool_status"))).drop("_near"))
    status = value_counts(marked, "pool_status")
    names = get_dataset("negatives_pool").schema.names
    pool = marked.filter(F.col("pool_status") == "ok").select(*names)
    pool.write.mode("overwrite").partitionBy("split").parquet(to_file_uri(args.output))
    written = spark.read.parquet(to_file_uri(args.output))
    summary = {
        "rows_in": rows_in, "rows_accounted": sum(status.values()), "status": status, "rows_out": written.count(),
        "preset": pool_cfg.preset, "lenses_excluded_around": len(lenses),
        "pool": value_counts(written, "pool"),
        "confuser_category": {str(k): v for k, v in value_counts(written, "confuser_category").items()},
        "split": value_counts(written, "split"),
    }
    staged.unpersist()
    mark_complete(args.output, summary)
    return summary


def main(argv=None) -> int:
    parser = job_parser(__doc__.splitlines()[0])
    add_flag(parser, "--input", "--tractor", dest="tractor", metavar="URI", required=True,
             help="Tractor/sweep Parquet dataset URI")
    parser.add_argument("--output", required=True, help="output negatives_pool dataset URI")
    summary = run_spark_job("negative_pool", argv, parser, CatalogConfig, _body,
                            inputs=lambda a, c: [JobInput("tractor", a.tractor, pipeline=False)])
    ok = summary["rows_accounted"] == summary["rows_in"] and summary["rows_out"] == summary["status"].get("ok", 0)
    return 0 if ok else 1


if __name__ == "__main__":
    from dhs_gen.entrypoint import run_main

    sys.exit(run_main(main))
