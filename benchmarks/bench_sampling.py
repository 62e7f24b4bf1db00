"""Stratified negative sampling of a mock pool: rows/s/core of :func:`sample_spark` (hash
prefilter + window on the candidates) vs the naive ``orderBy(rand).limit()`` per (stratum, pool),
both on the same Parquet pool in the same Spark session.

The pool (2M rows; 5k in quick mode) has the pool columns the sampler reads, with the
strata and N1/N2 shares of the production pool (nobs_z 3-5/6-10/11+ ~ 0.55/0.30/0.15, SER/DEV/REX,
N2 ~ 16.5%), generated natively in Spark from a hash of the row id. The target is the
production ratio: 510k of 18.6M (~2.7%).
"""
from __future__ import annotations

import tempfile
import time

from benchmarks.timing import entry

PRODUCTION_FRACTION = 510_000 / 18_600_000


def _mock_pool(spark, n_rows: int, path: str):
    from pyspark.sql import functions as F

    u1 = (F.abs(F.xxhash64(F.col("id"), F.lit(1))) % 1_000_000) / 1e6
    u2 = (F.abs(F.xxhash64(F.col("id"), F.lit(2))) % 1_000_000) / 1e6
    u3 = (F.abs(F.xxhash64(F.col("id"), F.lit(3))) % 1_000_000) / 1e6
    df = spark.range(0, n_rows, numPartitions=8).select(
        F.concat(F.lit("b"), F.lpad((F.col("id") % 100000).cast("string"), 6, "0"), F.lit("_"),
                 F.col("id").cast("string")).alias("galaxy_id"),
        F.when(u1 < 0.55, "3-5").when(u1 < 0.85, "6-10").otherwise("11+").alias("nobs_z_bin"),
        F.when(u2 < 0.35, "SER").when(u2 < 0.65, "DEV").otherwise("REX").alias("type_bin"),
        F.when(u3 < 0.165, "N2").otherwise("N1").alias("pool"),
        (F.col("id") % 196608).alias("healpix_128"),
        (u1 * 30).cast("float").alias("flux_r"))
    df.write.mode("overwrite").parquet(path)
    return spark.read.parquet(path)


def _naive(pool, report, seed: int) -> int:
    """The baseline: one orderBy(rand).limit(quota) per (stratum, pool), unioned and counted."""
    from functools import reduce

    from pyspark.sql import functions as F

    parts = []
    for row in report.itertuples():
        if row.quota <= 0:
            continue
        cond = (F.col("nobs_z_bin") == row.nobs_z_bin) & (F.col("type_bin") == row.type_bin) & (F.col("pool") == row.pool)
        parts.append(pool.filter(cond).orderBy(F.rand(seed)).limit(int(row.quota)))
    return reduce(lambda a, b: a.unionByName(b), parts).count()


def run(quick: bool = False) -> list:
    from dhs_gen.catalog.config import SamplingConfig
    from dhs_gen.catalog.sampling import sample_spark
    from dhs_gen.spark import build_spark_session

    n_rows = 5_000 if quick else 2_000_000
    spark = build_spark_session("dhs-bench-sampling", master="local[2]")
    cores = spark.sparkContext.defaultParallelism
    cfg = SamplingConfig(target_total=int(n_rows * PRODUCTION_FRACTION), seed=42)
    with tempfile.TemporaryDirectory(prefix="dhs-bench-sampling-") as tmp:
        warm = _mock_pool(spark, 5_000, f"file://{tmp}/warm")  # JIT/codegen warm-up for both methods
        warm_sample, warm_report, _ = sample_spark(spark, warm, cfg.model_copy(update={"target_total": 200}))
        warm_sample.unpersist()
        _naive(warm, warm_report, cfg.seed)
        pool = _mock_pool(spark, n_rows, f"file://{tmp}/pool")
        pool.count()
        t0 = time.perf_counter()
        sampled, report, passes = sample_spark(spark, pool, cfg)
        taken = sampled.count()
        ours = time.perf_counter() - t0
        sampled.unpersist()
        t0 = time.perf_counter()
        naive_taken = _naive(pool, report, cfg.seed)
        naive = time.perf_counter() - t0
    if taken != naive_taken:
        raise RuntimeError(f"the two samplers took different row counts: {taken} vs {naive_taken}")
    ours_rate, naive_rate = n_rows / ours / cores, n_rows / naive / cores
    notes = (f"{n_rows} pool rows, {taken} sampled in {len(report)} (stratum, pool) groups, local[{cores}], "
             f"prefilter passes {passes}; ours {ours:.2f}s vs naive {naive:.2f}s")
    return [
        entry("sampling_stratified_rows_per_s_per_core", ours_rate, "rows/s/core",
              "naive_orderBy_rand_limit_per_stratum", naive_rate, target="> baseline", notes=notes),
        entry("sampling_stratified_wall_s", ours, "s", "naive_orderBy_rand_limit_per_stratum", naive,
              ratio=naive / ours, notes="ratio = naive / ours (speed-up)"),
    ]
