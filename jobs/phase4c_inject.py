"""Phase 4c: inject lensed sources into host cutouts → stamps (positive, control, hard negative).

Reads the injection manifest, attaches each host's cutout (a ``cutout_index`` dataset joined on
host_id = galaxy_id, or a CutoutProvider called on the executors), renders whole Arrow batches
with :func:`dhs_gen.injection.inject_batch` and writes the ``stamps`` dataset: one row per
manifest row with ``status``.
"""
from __future__ import annotations

import sys
from typing import Any, Dict, Literal, Optional

import pyarrow as pa
from pydantic import Field

from dhs_gen.config import StrictModel
from dhs_gen.injection.inject import (
    PREPARED_HOSTS_SCHEMA,
    InjectConfig,
    attach_provider_cutouts,
    inject_batch,
    prepare_host_cutouts,
)
from dhs_gen.schemas import get_dataset
from jobs.common import job_parser, run_spark_job


class Phase4cConfig(StrictModel):
    manifest_uri: Optional[str] = None  # noqa: UP045
    cutouts_uri: Optional[str] = Field(None, description="cutout_index dataset; None: use provider")  # noqa: UP045
    provider: Dict[str, Any] = Field(default_factory=lambda: {"kind": "mock"},
                                     description="dhs_gen.survey.ProviderConfig when cutouts_uri is None")
    cutout_size: int = Field(101, ge=8, description="provider cutout side [pixels]")
    partitions: int = Field(8, ge=1)
    rows_per_batch: int = Field(256, ge=1, description="Arrow batch size (rows carry ~120 KB cutouts)")
    compression: Literal["lz4_raw", "zstd", "snappy", "none"] = Field(
        "lz4_raw", description="stamps Parquet codec (docs/injection_jobs.md: lz4_raw ~ zstd size, less CPU)")
    inject: InjectConfig = Field(default_factory=InjectConfig)


def stamps_batch(batch: pa.RecordBatch, cfg: InjectConfig, provider=None, cutout_size: int = 101) -> pa.RecordBatch:
    """Batch function: manifest rows (+ cutouts, or a provider to fetch them) → stamps rows."""
    table = pa.Table.from_batches([batch])
    if provider is not None:
        table = attach_provider_cutouts(table, provider, cutout_size)
    out = inject_batch(table, cfg).combine_chunks().to_batches()
    return out[0] if out else pa.RecordBatch.from_pylist([], schema=get_dataset("stamps").schema)


def hosts_batch(batch: pa.RecordBatch, size: int) -> pa.RecordBatch:
    """Batch function: cutout_index rows → prepared host rows (stamp-size crops, noise, offset)."""
    out = prepare_host_cutouts(batch, size).combine_chunks().to_batches()
    return out[0] if out else pa.RecordBatch.from_pylist([], schema=PREPARED_HOSTS_SCHEMA)


def _with_cutouts(spark, manifest, cfg: Phase4cConfig):
    """Manifest rows left-joined to their hosts, cropped to the stamp size before the join's
    shuffle (:func:`prepare_host_cutouts`): 64x64 crops travel instead of 101x101 cutouts."""
    from pyspark.sql import functions as F

    from dhs_gen.spark import map_arrow_batches
    from dhs_gen.storage import to_file_uri

    size = cfg.inject.stamp_size
    index = spark.read.parquet(to_file_uri(cfg.cutouts_uri))
    # Ids are checked for duplicates on the id column alone; only a dataset that has some pays for
    # de-duplicating rows that carry pixels (one output row per manifest row either way).
    duplicated = index.groupBy("galaxy_id").count().filter(F.col("count") > 1).limit(1).count() > 0
    cutouts = index.filter(F.col("cutout").isNotNull())
    cutouts = cutouts.select("galaxy_id", "cutout", "status", *[f"psfsize_{b}" for b in "grz"])
    hosts = map_arrow_batches(cutouts, lambda b: hosts_batch(b, size), PREPARED_HOSTS_SCHEMA)
    return manifest.join(hosts.dropDuplicates(["host_id"]) if duplicated else hosts, "host_id", "left")


def _body(spark, cfg: Phase4cConfig, args) -> dict:
    manifest_uri = args.manifest or cfg.manifest_uri
    if not manifest_uri:
        raise SystemExit("phase4c: give --manifest or manifest_uri")
    if args.cutouts:
        cfg = cfg.model_copy(update={"cutouts_uri": args.cutouts})
    # Arrow batches of rows_per_batch rows; the join's shuffle gives `partitions` partitions (so the
    # ~120 KB cutouts cross the network once). Session settings are restored afterwards.
    settings = {"spark.sql.execution.arrow.maxRecordsPerBatch": str(cfg.rows_per_batch),
                "spark.sql.shuffle.partitions": str(cfg.partitions)}
    previous = {key: spark.conf.get(key, None) for key in settings}
    for key, value in settings.items():
        spark.conf.set(key, value)
    try:
        return _run(spark, cfg, args, manifest_uri)
    finally:
        for key, value in previous.items():
            if value is not None:
                spark.conf.set(key, value)


def _run(spark, cfg: Phase4cConfig, args, manifest_uri: str) -> dict:
    from dhs_gen.spark import map_arrow_batches
    from dhs_gen.storage import mark_complete, to_file_uri

    manifest = spark.read.parquet(to_file_uri(manifest_uri))
    rows_in = manifest.count()
    icfg, size = cfg.inject, cfg.cutout_size
    if cfg.cutouts_uri:
        frame = _with_cutouts(spark, manifest, cfg)

        def fn(b):
            return stamps_batch(b, icfg)
    else:
        frame = manifest.repartition(cfg.partitions)
        pcfg = dict(cfg.provider)
        state = {}

        def fn(b):
            from dhs_gen.survey import make_provider

            if "provider" not in state:
                state["provider"] = make_provider(pcfg)
            return stamps_batch(b, icfg, state["provider"], size)
    out = map_arrow_batches(frame, fn, get_dataset("stamps").schema)
    out.write.mode("overwrite").option("compression", cfg.compression).parquet(to_file_uri(args.output))
    # Counts from what was written: one pass over the status column only (no pixels are read).
    written = spark.read.parquet(to_file_uri(args.output)).select("status")
    by_status = {r["status"]: r["count"] for r in written.groupBy("status").count().collect()}
    summary = {"rows_in": rows_in, "rows_out": sum(by_status.values()), "ok": by_status.get("ok", 0),
               "by_status": by_status, "cutouts": "dataset" if cfg.cutouts_uri else f"provider:{cfg.provider}"}
    mark_complete(args.output, summary)
    return summary


def main(argv=None) -> int:
    parser = job_parser(__doc__.splitlines()[0])
    parser.add_argument("--manifest", help="injection manifest URI (or manifest_uri in the config)")
    parser.add_argument("--cutouts", help="cutout_index dataset URI (or cutouts_uri; else the provider)")
    parser.add_argument("--output", required=True, help="output stamps dataset URI")
    summary = run_spark_job("phase4c", argv, parser, Phase4cConfig, _body)
    return 0 if summary["rows_out"] == summary["rows_in"] else 1


if __name__ == "__main__":
    sys.exit(main())
