"""Phase 4c: inject lensed sources into host cutouts → stamps (positive, control, hard negative).

Reads the injection manifest, attaches each host's cutout (from a ``cutout_index`` dataset, or a
CutoutProvider called on the executors), renders whole Arrow batches with
:func:`dhs_gen.injection.inject_batch` and writes the ``stamps`` dataset: one row per manifest row
with ``status``. Image blobs never pass through the JVM: Spark moves manifest rows and cutout
addresses; the Python workers read the cutouts and write the stamps shards themselves
(:func:`dhs_gen.spark.write_shards`).
"""
from __future__ import annotations

import sys
from typing import Any, Dict, Iterator, Literal, Optional

import pyarrow as pa
from pydantic import Field

from dhs_gen.config import StrictModel
from dhs_gen.entrypoint import add_flag
from dhs_gen.injection.inject import (
    CUTOUT_FILE,
    CUTOUT_ROW,
    InjectConfig,
    attach_dataset_cutouts,
    attach_provider_cutouts,
    cutout_reader,
    inject_batch,
)
from dhs_gen.schemas import get_dataset
from jobs.common import JobInput, job_parser, run_spark_job


class Phase4cConfig(StrictModel):
    manifest_uri: Optional[str] = None  # noqa: UP045
    cutouts_uri: Optional[str] = Field(None, description="cutout_index dataset; None: use provider")  # noqa: UP045
    provider: Dict[str, Any] = Field(default_factory=lambda: {"kind": "mock"},
                                     description="dhs_gen.survey.ProviderConfig when cutouts_uri is None")
    cutout_size: int = Field(101, ge=8, description="provider cutout side [pixels]")
    partitions: int = Field(8, ge=1)
    rows_per_batch: int = Field(256, ge=1, description="Arrow batch size (rows carry ~120 KB cutouts)")
    rows_per_file: int = Field(1024, ge=1, description="stamps rows per Parquet shard (~150 KB each)")
    compression: Literal["lz4_raw", "zstd", "snappy", "none"] = Field(
        "none", description="stamps Parquet codec (docs/injection_jobs.md, Performance: float32 stamps do not "
                            "compress; a codec costs CPU)")
    inject: InjectConfig = Field(default_factory=InjectConfig)


def _addressed(spark, manifest, cfg: Phase4cConfig):
    """Manifest rows with the address (file, row index) of their host's row in the cutout
    dataset (null when it has none), range-partitioned and sorted by address so that each task
    reads its row groups once. Only ids and addresses cross the shuffle. A host listed more than
    once gets one address: its first row with status ok, else its first row."""
    from pyspark.sql import functions as F

    from dhs_gen.storage import to_file_uri

    # An explicit schema: no schema inference over the (large) cutout dataset; a dataset without a
    # status column reads it as null (= ok).
    index = spark.read.schema("galaxy_id string, status string").parquet(to_file_uri(cfg.cutouts_uri))
    bad = F.coalesce(F.col("status"), F.lit("ok")) != "ok"
    address = F.struct(bad.alias("bad"), F.col("_metadata.file_path").alias("file"),
                       F.col("_metadata.row_index").alias("row"))
    first = index.select(F.col("galaxy_id").alias("host_id"), address.alias("a")).groupBy("host_id") \
        .agg(F.min("a").alias("a")).select("host_id", F.col("a.file").alias(CUTOUT_FILE),
                                           F.col("a.row").alias(CUTOUT_ROW))
    frame = manifest.join(first, "host_id", "left")
    return frame.repartitionByRange(cfg.partitions, CUTOUT_FILE, CUTOUT_ROW) \
        .sortWithinPartitions(CUTOUT_FILE, CUTOUT_ROW, "task_id")


def _stamps_partition(cfg: Phase4cConfig):
    """The per-partition function: batches of manifest rows (addressed when ``cutouts_uri`` is
    set) → stamps tables."""
    icfg, size, pcfg, addressed = cfg.inject, cfg.cutout_size, dict(cfg.provider), bool(cfg.cutouts_uri)

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.Table]:
        if addressed:
            reader = cutout_reader()
            try:
                for batch in batches:
                    yield inject_batch(attach_dataset_cutouts(pa.Table.from_batches([batch]), reader), icfg)
            finally:
                reader.close()
        else:
            from dhs_gen.survey import make_provider

            provider = make_provider(pcfg)
            for batch in batches:
                yield inject_batch(attach_provider_cutouts(pa.Table.from_batches([batch]), provider, size), icfg)
    return run


def validate_config(cfg: Phase4cConfig, args) -> None:
    """Driver-side checks before any work: a manifest is named, and the provider config (used
    when no cutout dataset is given) parses, so a typo in ``provider.kind`` fails here, not on
    the workers."""
    from dhs_gen.config import parse_config
    from dhs_gen.survey.providers import ProviderConfig

    if not (args.manifest or cfg.manifest_uri):
        raise ValueError("phase4c: give --manifest or manifest_uri")
    if not (args.cutouts or cfg.cutouts_uri):
        parse_config(ProviderConfig, dict(cfg.provider), source="phase4c provider")


def _body(spark, cfg: Phase4cConfig, args) -> dict:
    manifest_uri = args.manifest or cfg.manifest_uri
    if not manifest_uri:
        raise SystemExit("phase4c: give --manifest or manifest_uri")
    if args.cutouts:
        cfg = cfg.model_copy(update={"cutouts_uri": args.cutouts})
    # Arrow batches of rows_per_batch rows; the session setting is restored afterwards.
    key = "spark.sql.execution.arrow.maxRecordsPerBatch"
    previous = spark.conf.get(key, None)
    spark.conf.set(key, str(cfg.rows_per_batch))
    try:
        return _run(spark, cfg, args, manifest_uri)
    finally:
        if previous is not None:
            spark.conf.set(key, previous)


def _run(spark, cfg: Phase4cConfig, args, manifest_uri: str) -> dict:
    from dhs_gen.spark import write_shards
    from dhs_gen.storage import count_parquet_rows, mark_complete, to_file_uri

    manifest = spark.read.parquet(to_file_uri(manifest_uri))
    rows_in = count_parquet_rows(manifest_uri)  # footers only, no Spark job
    frame = _addressed(spark, manifest, cfg) if cfg.cutouts_uri else manifest.repartition(cfg.partitions)
    written = write_shards(frame, _stamps_partition(cfg), args.output, get_dataset("stamps").schema,
                           compression=cfg.compression, rows_per_file=cfg.rows_per_file, count_column="status",
                           expected_rows=rows_in)
    by_status = written["counts"]
    summary = {"rows_in": rows_in, "rows_out": written["rows"], "ok": by_status.get("ok", 0),
               "by_status": by_status, "files": written["files"],
               "cutouts": "dataset" if cfg.cutouts_uri else f"provider:{cfg.provider}"}
    mark_complete(args.output, summary)
    return summary


def main(argv=None) -> int:
    parser = job_parser(__doc__.splitlines()[0])
    add_flag(parser, "--input", "--manifest", dest="manifest", metavar="URI",
             help="injection manifest URI (or manifest_uri in the config)")
    parser.add_argument("--cutouts", help="cutout_index dataset URI (or cutouts_uri; else the provider)")
    parser.add_argument("--output", required=True, help="output stamps dataset URI")
    summary = run_spark_job("phase4c", argv, parser, Phase4cConfig, _body, validate=validate_config,
                            inputs=lambda a, c: [JobInput("manifest", a.manifest or c.manifest_uri),
                                                 JobInput("cutouts", a.cutouts or c.cutouts_uri)])
    return 0 if summary["rows_out"] == summary["rows_in"] else 1


if __name__ == "__main__":
    from dhs_gen.entrypoint import run_main

    sys.exit(run_main(main))
