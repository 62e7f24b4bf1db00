"""Phase 4a: build the injection manifest from a host catalogue and a grid or random design.

Reads hosts (Parquet at ``hosts_uri``, or the packaged real DR10 LRG sample), expands each Arrow
batch of hosts with :func:`dhs_gen.injection.build_manifest` (bounded rows per host, no cross
join), and writes the ``injection_manifest`` dataset.
"""
from __future__ import annotations

import sys
from typing import Optional

import pyarrow as pa
from pydantic import Field

from dhs_gen.config import StrictModel
from dhs_gen.injection.manifest import ManifestConfig, build_manifest
from dhs_gen.schemas import get_dataset
from jobs.common import job_parser, run_spark_job


class Phase4aConfig(StrictModel):
    hosts_uri: Optional[str] = Field(None, description="host Parquet; None: packaged DR10 LRG sample")  # noqa: UP045
    partitions: int = Field(8, ge=1)
    manifest: ManifestConfig = Field(default_factory=ManifestConfig)


def manifest_batch(batch: pa.RecordBatch, cfg: ManifestConfig) -> pa.RecordBatch:
    """Batch function: hosts → manifest rows as one RecordBatch."""
    table = build_manifest(pa.Table.from_batches([batch]), cfg).combine_chunks()
    batches = table.to_batches()
    return batches[0] if batches else pa.RecordBatch.from_pylist([], schema=table.schema)


def _hosts_frame(spark, cfg: Phase4aConfig):
    from dhs_gen.storage import to_file_uri

    if cfg.hosts_uri:
        return spark.read.parquet(to_file_uri(cfg.hosts_uri))
    from dhs_gen.survey import load_lrg_sample

    frame = load_lrg_sample()
    return spark.createDataFrame(frame[["lrg_index", "ra", "dec", "brickname"]].assign(
        galaxy_id=frame["brickname"].astype(str) + "_lrg" + frame["lrg_index"].astype(str)))


def _body(spark, cfg: Phase4aConfig, args) -> dict:
    from pyspark.sql import functions as F

    from dhs_gen.spark import map_arrow_batches
    from dhs_gen.storage import mark_complete, to_file_uri

    hosts = _hosts_frame(spark, cfg).repartition(cfg.partitions)
    mcfg = cfg.manifest
    out = map_arrow_batches(hosts, lambda b: manifest_batch(b, mcfg), get_dataset("injection_manifest").schema)
    out.write.mode("overwrite").parquet(to_file_uri(args.output))
    written = spark.read.parquet(to_file_uri(args.output))
    counts = {r["status"]: r["count"] for r in written.groupBy("status").count().collect()}
    modes = {r["source_mode"]: r["count"] for r in written.groupBy("source_mode").count().collect()}
    summary = {"hosts_in": hosts.count(), "rows_out": written.count(), "by_status": counts,
               "by_source_mode": modes, "design": mcfg.design,
               "distinct_task_ids": written.select(F.countDistinct("task_id")).first()[0]}
    mark_complete(args.output, summary)
    return summary


def main(argv=None) -> int:
    parser = job_parser(__doc__.splitlines()[0])
    parser.add_argument("--output", required=True, help="output manifest dataset URI")
    summary = run_spark_job("phase4a", argv, parser, Phase4aConfig, _body)
    return 0 if summary["rows_out"] == summary["distinct_task_ids"] else 1


if __name__ == "__main__":
    from dhs_gen.entrypoint import run_main

    sys.exit(run_main(main))
