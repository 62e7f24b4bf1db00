"""Compaction: many small Parquet files -> few well-sized ones, optionally relabeling splits.

Rows are range-partitioned on (split, healpix_128, id) so each output file holds one split and a
compact patch of sky. The result is verified before it is marked complete: row counts equal, no
duplicate ids, and the id sets equal (anti-joins both ways).
"""
from __future__ import annotations

import math

from dhs_gen.catalog.config import CompactConfig, SplitConfig


class CompactionError(RuntimeError):
    """The compacted output does not hold exactly the input rows."""


def plan_file_count(total_bytes: int, target_file_mb: float, max_files: int = 10000) -> int:
    """Number of output files: ceil(input bytes / target size), at least 1, at most ``max_files``."""
    if target_file_mb <= 0:
        raise ValueError("target_file_mb must be > 0")
    return int(min(max(1, math.ceil(total_bytes / (target_file_mb * 1024 * 1024))), max_files))


def dataset_bytes(uri: str) -> tuple[int, int]:
    """(number of .parquet files, their total bytes) under a dataset URI."""
    from dhs_gen.storage import get_fs, list_files

    files = list_files(uri, ".parquet")
    if not files:
        return 0, 0
    fs, _ = get_fs(uri)
    return len(files), int(sum(fs.size(get_fs(f)[1]) for f in files))


def relabel_splits(df, cfg: CompactConfig, split: SplitConfig):
    """Spark: recompute the split column from the nside-128 NESTED pixel (native sha2, see
    splits.split_col); the pixel is computed from ra/dec when the column is absent."""
    from dhs_gen.catalog.splits import split_col

    if cfg.pixel_column not in df.columns:
        if not {"ra", "dec"} <= set(df.columns):
            raise ValueError(f"cannot relabel splits: neither {cfg.pixel_column!r} nor ra/dec in {df.columns}")
        from dhs_gen.catalog.crossmatch import with_join_pixel
        from dhs_gen.catalog.splits import DEFAULT_NSIDE

        df = with_join_pixel(df, DEFAULT_NSIDE).withColumnRenamed("join_pixel", cfg.pixel_column)
    s = split
    return df.withColumn(cfg.split_column, split_col(cfg.pixel_column, s.seed, s.fractions, s.scheme, s.names))


def verify_same_rows(before, after, id_column: str) -> dict:
    """Counts, duplicate ids and id-set equality of two Spark DataFrames; raise CompactionError on any loss."""
    n_before, n_after = before.count(), after.count()
    distinct_after = after.select(id_column).distinct().count()
    ids_b, ids_a = before.select(id_column), after.select(id_column)
    lost = ids_b.join(ids_a, on=id_column, how="left_anti").count()
    extra = ids_a.join(ids_b, on=id_column, how="left_anti").count()
    report = {"rows_in": n_before, "rows_out": n_after, "duplicate_ids_out": n_after - distinct_after,
              "ids_lost": lost, "ids_added": extra}
    if n_before != n_after or distinct_after != n_after or lost or extra:
        raise CompactionError(f"compaction changed the rows: {report}")
    return report


def compact_spark(spark, input_uri: str, output_uri: str, cfg: CompactConfig, split: SplitConfig) -> dict:
    """Read ``input_uri``, (relabel), write ~target-sized files to ``output_uri``, verify; return a summary."""
    from pyspark.sql import functions as F

    from dhs_gen.storage import to_file_uri

    files_in, bytes_in = dataset_bytes(input_uri)
    if files_in == 0:
        raise ValueError(f"no Parquet files under {input_uri}")
    source = spark.read.parquet(to_file_uri(input_uri))
    if cfg.id_column not in source.columns:
        raise ValueError(f"id column {cfg.id_column!r} not in {source.columns}")
    df = relabel_splits(source, cfg, split) if cfg.relabel else source
    changed = None
    if cfg.relabel and cfg.split_column in source.columns:
        old = source.select(cfg.id_column, F.col(cfg.split_column).alias("_old"))
        changed = (df.select(cfg.id_column, cfg.split_column).join(old, on=cfg.id_column)
                   .filter(F.col("_old") != F.col(cfg.split_column)).count())
    n_files = plan_file_count(bytes_in, cfg.target_file_mb, cfg.max_files)
    partition_by = cfg.partition_by_split and cfg.split_column in df.columns
    keys = [c for c in ((cfg.split_column if partition_by else None), cfg.pixel_column, cfg.id_column)
            if c and c in df.columns]
    out = df.repartitionByRange(n_files, *keys).sortWithinPartitions(*keys)
    writer = out.write.mode("overwrite")
    if partition_by:
        writer = writer.partitionBy(cfg.split_column)
    writer.parquet(to_file_uri(output_uri))
    written = spark.read.parquet(to_file_uri(output_uri))
    summary = verify_same_rows(source, written, cfg.id_column)
    files_out, bytes_out = dataset_bytes(output_uri)
    summary.update({"files_in": files_in, "bytes_in": bytes_in, "files_out": files_out, "bytes_out": bytes_out,
                    "planned_partitions": n_files, "relabel": cfg.relabel, "relabel_changed_rows": changed})
    if cfg.split_column in written.columns:
        from dhs_gen.spark import value_counts

        summary["split_counts"] = value_counts(written, cfg.split_column)
    return summary
