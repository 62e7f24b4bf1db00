"""Completeness from scores (Spark): injections LEFT JOIN scores -> per-batch counts -> sum.

The batch function (``dhs_gen.selection.completeness.count_batch``) and the finalisation are
the local function's, so ``dhs completeness`` and ``dhs selection-function`` give identical
tables. Thresholds, and their bootstrap replicates, are set on the driver from the negatives'
logits (exact order statistics; the negatives are small next to the injections).
"""
from __future__ import annotations

import sys

import pyarrow as pa

from dhs_gen.selection.config import SelectionConfig
from jobs.common import JobInput, job_parser, run_spark_job


def _require(cfg: SelectionConfig, *names: str) -> None:
    missing = [n for n in names if not getattr(cfg, n)]
    if missing:
        raise SystemExit(f"dhs completeness: config needs {missing}")


def spark_counts(spark, cfg: SelectionConfig, spec) -> tuple[pa.Table, dict]:
    """Summed counts (``counts_schema``) over injections joined with scores, computed by Spark,
    and the number of joined rows per model_id (None: injections without any score)."""
    from pyspark.sql import functions as F

    from dhs_gen.selection.completeness import COUNT_KEYS, INJECTION_COLUMNS, count_batch, counts_schema
    from dhs_gen.selection.thresholds import SCORE_COLUMN
    from dhs_gen.spark import map_arrow_batches, value_counts
    from dhs_gen.storage import to_file_uri

    inj = spark.read.parquet(to_file_uri(cfg.injections))
    inj = inj.select(*[c for c in INJECTION_COLUMNS if c in inj.columns])
    scores = spark.read.parquet(to_file_uri(cfg.scores)).select(
        F.col("id").alias("task_id"), "model_id", F.col("status").alias("score_status"),
        F.col(SCORE_COLUMN).cast("double").alias("score"))
    for df, keys, what in ((inj, ["task_id"], "injections"), (scores, ["task_id", "model_id"], "scores")):
        dup = df.groupBy(*keys).count().filter("count > 1").take(3)
        if dup:
            raise ValueError(f"{what}: duplicated {keys}, e.g. {[r.asDict() for r in dup]}")
    joined = inj.join(scores, on="task_id", how="left")
    schema = counts_schema(spec.n_proxies)
    counts = map_arrow_batches(joined, lambda b: count_batch(b, spec), schema)
    sums = [c for c in schema.names if c not in COUNT_KEYS]
    summed = counts.groupBy(*COUNT_KEYS).agg(*[F.sum(c).alias(c) for c in sums]).toPandas()
    per_model = value_counts(joined, "model_id")
    return pa.Table.from_pandas(summed, preserve_index=False).select(schema.names).cast(schema), per_model


def run(spark, cfg: SelectionConfig) -> dict:
    """Thresholds, provenance, Spark counts, finalisation; returns the result tables and summary."""
    from pyspark.sql import functions as F

    from dhs_gen.selection.completeness import assemble, build_spec, coverage, reduce_counts
    from dhs_gen.selection.provenance import verify_provenance
    from dhs_gen.selection.thresholds import NEGATIVE_COLUMNS, SCORE_COLUMN
    from dhs_gen.storage import to_file_uri

    _require(cfg, "injections", "scores", "negative_scores")
    neg = spark.read.parquet(to_file_uri(cfg.negative_scores))
    neg = neg.select(*[F.col(c).cast("double").alias(c) if c == SCORE_COLUMN else c
                       for c in NEGATIVE_COLUMNS if c in neg.columns])
    negatives = pa.Table.from_pandas(neg.toPandas(), preserve_index=False)
    spec, thresholds = build_spec(cfg, negatives)
    inj = spark.read.parquet(to_file_uri(cfg.injections))
    ids = inj.select("task_id", "host_id" if "host_id" in inj.columns else F.lit(None).alias("host_id")).toPandas()
    model_ids = [r[0] for r in spark.read.parquet(to_file_uri(cfg.scores)).select("model_id").distinct().collect()]
    provenance = verify_provenance(model_ids, cfg.provenance, ids["task_id"], ids["host_id"],
                                   negatives["id"].to_pylist())
    counts, per_model = spark_counts(spark, cfg, spec)
    results = assemble(reduce_counts(counts), spec, thresholds, cfg, coverage(per_model, len(ids)))
    return {"results": results, "provenance": provenance, "n_injections": len(ids)}


def _body(spark, cfg: SelectionConfig, args) -> dict:
    from dhs_gen.selection.report import headline, write_tables
    from dhs_gen.storage import join_uri, mark_complete, write_json

    _require(cfg, "output")
    out = run(spark, cfg)
    results = out["results"]
    written = write_tables(results, cfg.output)
    final = getattr(args, "final_output", None) or cfg.output  # cfg.output is the staging folder
    summary = {"n_injections": out["n_injections"], "provenance": out["provenance"],
               "headline": headline(results["completeness"], results["thresholds"]),
               "tables": {k: v.replace(cfg.output, final, 1) for k, v in written.items()}, "engine": "spark"}
    write_json(join_uri(cfg.output, "selection_summary.json"), summary)
    mark_complete(cfg.output, {"n_injections": out["n_injections"]})
    return {"n_injections": out["n_injections"], "models": [p["model_id"] for p in out["provenance"]],
            "completeness_rows": results["completeness"].num_rows, "output": final}


def main(argv=None) -> int:
    parser = job_parser(__doc__.splitlines()[0])
    run_spark_job("completeness", argv, parser, SelectionConfig, _body, inputs=lambda a, c: [
        JobInput("injections", c.injections), JobInput("scores", c.scores),
        JobInput("negative_scores", c.negative_scores)])
    return 0


if __name__ == "__main__":
    from dhs_gen.entrypoint import run_main

    sys.exit(run_main(main))
