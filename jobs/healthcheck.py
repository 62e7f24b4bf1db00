"""Trivial Spark job: numbers -> numpy batch function over Arrow batches -> Parquet.

Proves the session builder, the mapInArrow helper, per-row hashing and the write path work the
same under ``spark-submit --master local[2]`` as under EMR.
"""
from __future__ import annotations

import sys

import numpy as np
import pyarrow as pa

from dhs_gen.config import StrictModel
from dhs_gen.determinism import stable_uniform
from jobs.common import job_parser, run_spark_job

OUTPUT_SCHEMA = pa.schema([("id", pa.int64()), ("square", pa.int64()), ("u", pa.float64()), ("status", pa.string())])


class HealthcheckConfig(StrictModel):
    rows: int = 1000
    seed: int = 42
    partitions: int = 4


def square_batch(batch: pa.RecordBatch, seed: int = 42) -> pa.RecordBatch:
    """The batch function: id -> id², a per-row uniform from hash(seed, id), status 'ok'."""
    ids = batch.column("id").to_numpy()
    return pa.RecordBatch.from_arrays(
        [pa.array(ids), pa.array(ids * ids), pa.array(stable_uniform(seed, ids)), pa.array(np.full(len(ids), "ok"))],
        schema=OUTPUT_SCHEMA,
    )


def _body(spark, cfg: HealthcheckConfig, args) -> dict:
    from dhs_gen.spark import map_arrow_batches
    from dhs_gen.storage import mark_complete, to_file_uri

    df = spark.range(0, cfg.rows, numPartitions=cfg.partitions)
    seed = cfg.seed
    out = map_arrow_batches(df, lambda b: square_batch(b, seed), OUTPUT_SCHEMA)
    out.write.mode("overwrite").parquet(to_file_uri(args.output))
    written = spark.read.parquet(to_file_uri(args.output))
    summary = {"rows_in": cfg.rows, "rows_out": written.count(),
               "ok": written.filter("status = 'ok'").count()}
    mark_complete(args.output, summary)
    return summary


def main(argv=None) -> int:
    parser = job_parser(__doc__.splitlines()[0])
    parser.add_argument("--output", required=True, help="output dataset URI")
    summary = run_spark_job("healthcheck", argv, parser, HealthcheckConfig, _body)
    return 0 if summary["rows_out"] == summary["rows_in"] else 1


if __name__ == "__main__":
    from dhs_gen.entrypoint import run_main

    sys.exit(run_main(main))
