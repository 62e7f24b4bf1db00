"""Training manifest: matched positives + sampled negatives -> galaxy_id, stamp_ref, label, weight, split, tier.

Splits are recomputed from healpix_128 with ``splits`` for both classes; negatives that are
also positives are dropped; with ``--cutouts`` (a cutout_index dataset) only rows whose cutout is
ok enter and stamp_ref points into it. Writes the ``training_manifest`` dataset and a summary.
"""
from __future__ import annotations

import sys

from dhs_gen.catalog.config import CatalogConfig
from jobs.common import JobInput, job_parser, run_spark_job


def _body(spark, cfg: CatalogConfig, args) -> dict:
    from dhs_gen.catalog.manifest import build_manifest_spark
    from dhs_gen.spark import value_counts
    from dhs_gen.storage import mark_complete, to_file_uri

    positives = spark.read.parquet(to_file_uri(args.positives))
    negatives = spark.read.parquet(to_file_uri(args.negatives))
    cutouts = spark.read.parquet(to_file_uri(args.cutouts)) if args.cutouts else None
    rows_in = positives.count() + negatives.count()
    manifest, dropped = build_manifest_spark(positives, negatives, cfg.manifest, cfg.splits, cutouts, args.cutouts)
    manifest.coalesce(max(1, args.files)).write.mode("overwrite").parquet(to_file_uri(args.output))
    written = spark.read.parquet(to_file_uri(args.output))
    summary = {
        "rows_in": rows_in, "rows_out": written.count(), "dropped": dropped,
        "by_tier": value_counts(written, "tier"),
        "by_split": value_counts(written, "split"),
    }
    mark_complete(args.output, summary)
    return summary


def main(argv=None) -> int:
    parser = job_parser(__doc__.splitlines()[0])
    parser.add_argument("--positives", required=True, help="positives dataset URI")
    parser.add_argument("--negatives", required=True, help="sampled_negatives dataset URI")
    parser.add_argument("--cutouts", help="cutout_index dataset URI (optional)")
    parser.add_argument("--files", type=int, default=1, help="number of output files")
    parser.add_argument("--output", required=True, help="output training_manifest dataset URI")
    summary = run_spark_job("training_manifest", argv, parser, CatalogConfig, _body, inputs=lambda a, c: [
        JobInput("positives", a.positives), JobInput("negatives", a.negatives), JobInput("cutouts", a.cutouts)])
    return 0 if summary["rows_out"] + sum(summary["dropped"].values()) == summary["rows_in"] else 1


if __name__ == "__main__":
    from dhs_gen.entrypoint import run_main

    sys.exit(run_main(main))
