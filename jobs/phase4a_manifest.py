"""Phase 4a: build the injection manifest from a host catalogue and a grid or random design.

Reads hosts (Parquet at ``hosts_uri``, or the packaged real DR10 LRG sample with its g, r, z, W1
fluxes), expands each Arrow batch of hosts with :func:`dhs_gen.injection.build_manifest` (bounded
rows per host, no cross join), and writes the ``injection_manifest`` dataset. The summary counts
every host by what became of it (:func:`dhs_gen.injection.manifest.host_plan`: drawn, another
role, no redshift, outside the z_l bins), the hosts per z_l bin with the redshift percentiles,
the host-role split, and the source-colour prior with its warning when it is not the project's.
"""
from __future__ import annotations

import sys
from typing import Optional

import pyarrow as pa
from pydantic import Field

from dhs_gen.config import StrictModel
from dhs_gen.injection.manifest import ManifestConfig, build_manifest, host_plan, source_colour_summary
from dhs_gen.schemas import get_dataset
from jobs.common import JobInput, job_parser, run_spark_job


class Phase4aConfig(StrictModel):
    hosts_uri: Optional[str] = Field(None, description="host Parquet; None: packaged DR10 LRG sample")  # noqa: UP045
    partitions: int = Field(8, ge=1)
    manifest: ManifestConfig = Field(default_factory=ManifestConfig)


def manifest_batch(batch: pa.RecordBatch, cfg: ManifestConfig) -> pa.RecordBatch:
    """Batch function: hosts → manifest rows as one RecordBatch."""
    table = build_manifest(pa.Table.from_batches([batch]), cfg).combine_chunks()
    batches = table.to_batches()
    return batches[0] if batches else pa.RecordBatch.from_pylist([], schema=table.schema)


PLAN_SCHEMA = pa.schema([("host_id", pa.string()), ("host_z", pa.float64()), ("host_role", pa.string()),
                         ("z_bin", pa.int64()), ("z_bin_prob", pa.float64()), ("host_status", pa.string())])


def plan_batch(batch: pa.RecordBatch, cfg: ManifestConfig) -> pa.RecordBatch:
    """Batch function: hosts → (host_id, host_z, host_role, z_bin, z_bin_prob, host_status), one row per host."""
    plan = host_plan(pa.Table.from_batches([batch]), cfg).select(PLAN_SCHEMA.names).cast(PLAN_SCHEMA)
    plan = plan.combine_chunks()
    return plan.to_batches()[0] if plan.num_rows else pa.RecordBatch.from_pylist([], schema=PLAN_SCHEMA)


def _redshift_summary(written, plan) -> dict:
    """Hosts per status and role, and the drawn hosts' redshifts: percentiles, counts per z_l bin,
    and each bin's expected purity (mean probability that a host's true z lies in its bin)."""
    from pyspark.sql import functions as F

    def counts(df, column):
        return {r[0]: int(r[1]) for r in df.groupBy(column).count().collect()}

    hosts = written.select("host_id", "z_l", "z_l_err", "z_l_lo", "z_l_hi", "z_l_source").dropDuplicates(["host_id"])
    q = hosts.approxQuantile("z_l", [0.05, 0.16, 0.5, 0.84, 0.95], 0.0) if hosts.head(1) else []
    bins = hosts.groupBy("z_l_lo", "z_l_hi").agg(F.count("*").alias("n_hosts"), F.avg("z_l").alias("mean_z_l"),
                                                 F.avg("z_l_err").alias("mean_z_l_err")).orderBy("z_l_lo").collect()
    return {"hosts_by_status": counts(plan, "host_status"), "hosts_by_role": counts(plan, "host_role"),
            "z_l_source": sorted(r[0] for r in hosts.select("z_l_source").distinct().collect() if r[0]),
            "host_z_l_percentiles": dict(zip(("p05", "p16", "p50", "p84", "p95"), q)),
            "hosts_per_z_l_bin": [{k: r[k] for k in ("z_l_lo", "z_l_hi", "n_hosts", "mean_z_l", "mean_z_l_err")}
                                  for r in bins],
            "z_l_bin_purity": [{"z_bin": r[0], "n_hosts": r[1], "expected_purity": r[2]} for r in plan.filter(
                (F.col("host_status") == "ok") & (F.col("z_bin") >= 0)).groupBy("z_bin").agg(
                F.count("*"), F.avg("z_bin_prob")).orderBy("z_bin").collect()]}


def _hosts_frame(spark, cfg: Phase4aConfig):
    from dhs_gen.storage import to_file_uri

    if cfg.hosts_uri:
        return spark.read.parquet(to_file_uri(cfg.hosts_uri))
    from dhs_gen.survey import load_lrg_sample
    from dhs_gen.survey.sky import lrg_galaxy_ids

    frame = load_lrg_sample()
    return spark.createDataFrame(frame[["lrg_index", "ra", "dec", "brickname", "flux_g", "flux_r", "flux_z",
                                        "flux_w1"]].assign(
        galaxy_id=lrg_galaxy_ids(frame["lrg_index"], frame["ra"], frame["dec"])))


def _body(spark, cfg: Phase4aConfig, args) -> dict:
    from pyspark.sql import functions as F

    from dhs_gen.spark import map_arrow_batches, value_counts
    from dhs_gen.storage import mark_complete, to_file_uri

    hosts = _hosts_frame(spark, cfg).repartition(cfg.partitions)
    mcfg = cfg.manifest
    out = map_arrow_batches(hosts, lambda b: manifest_batch(b, mcfg), get_dataset("injection_manifest").schema)
    out.write.mode("overwrite").parquet(to_file_uri(args.output))
    written = spark.read.parquet(to_file_uri(args.output))
    counts = value_counts(written, "status")
    modes = value_counts(written, "source_mode")
    summary = {"hosts_in": hosts.count(), "rows_out": written.count(), "by_status": counts,
               "by_source_mode": modes, "design": mcfg.design,
               "distinct_task_ids": written.select(F.countDistinct("task_id")).first()[0],
               "host_roles": {"draw": mcfg.host_roles.draw, "selection_fraction": mcfg.host_roles.selection_fraction,
                              "salt": mcfg.host_roles.salt},
               "source_colours": source_colour_summary(mcfg),
               **_redshift_summary(written, map_arrow_batches(hosts, lambda b: plan_batch(b, mcfg), PLAN_SCHEMA))}
    if summary["source_colours"]["warning"]:
        print(f"WARNING phase4a: {summary['source_colours']['warning']}", file=sys.stderr)
    mark_complete(args.output, summary)
    return summary


def main(argv=None) -> int:
    parser = job_parser(__doc__.splitlines()[0])
    parser.add_argument("--output", required=True, help="output manifest dataset URI")
    summary = run_spark_job("phase4a", argv, parser, Phase4aConfig, _body,
                            inputs=lambda a, c: [JobInput("hosts_uri", c.hosts_uri, pipeline=False)])
    return 0 if summary["rows_out"] == summary["distinct_task_ids"] else 1


if __name__ == "__main__":
    from dhs_gen.entrypoint import run_main

    sys.exit(run_main(main))
