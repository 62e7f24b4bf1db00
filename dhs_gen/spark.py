"""The one Spark session builder and the batch-map helpers every job uses.

pyspark is imported inside functions so that ``dhs_gen`` stays importable without it.
Jobs apply numpy functions over Arrow record batches (``mapInArrow``); never per-row Python UDFs.
"""
from __future__ import annotations

import os
from typing import Callable, Iterator

import pyarrow as pa

from dhs_gen.determinism import HASH_HEX_DIGITS

DEFAULT_CONF = {
    # Explicit: its default differs between Spark 3.5 (false) and 4.0 (true).
    "spark.sql.ansi.enabled": "false",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.execution.arrow.maxRecordsPerBatch": "2048",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.parquet.compression.codec": "zstd",
    "spark.sql.sources.partitionOverwriteMode": "dynamic",
    "spark.ui.showConsoleProgress": "false",
}


def build_spark_session(app_name: str, master: str | None = None, conf: dict | None = None,
                        ansi: bool = False):
    """Create (or get) the SparkSession.

    master: ``local[N]`` for one machine; None lets spark-submit / EMR decide (cluster mode).
    Local sessions bind to loopback (``SPARK_LOCAL_IP``, default 127.0.0.1) and keep the UI off.
    """
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(app_name)
    settings = dict(DEFAULT_CONF)
    settings["spark.sql.ansi.enabled"] = "true" if ansi else "false"
    is_local = master is not None and master.startswith("local")
    if is_local:
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        builder = builder.master(master)
        settings.update({
            "spark.driver.host": os.environ["SPARK_LOCAL_IP"],
            "spark.driver.bindAddress": os.environ["SPARK_LOCAL_IP"],
            "spark.ui.enabled": "false",
            "spark.sql.shuffle.partitions": "8",
            "spark.driver.memory": os.environ.get("DHS_SPARK_DRIVER_MEMORY", "4g"),
        })
    settings.update(conf or {})
    for key, value in settings.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel(os.environ.get("DHS_SPARK_LOG_LEVEL", "WARN"))
    return session


def map_arrow_batches(df, fn: Callable[[pa.RecordBatch], pa.RecordBatch], schema: pa.Schema):
    """Apply ``fn`` (RecordBatch -> RecordBatch with ``schema``) to every Arrow batch of ``df``.

    The fields' units and descriptions become Spark column metadata, written into the Parquet footer."""
    from dhs_gen.schemas import spark_schema

    def _apply(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            out = fn(batch)
            if out.num_rows:
                yield out

    return df.mapInArrow(_apply, spark_schema(schema))  # units kept as column metadata


def value_counts(df, column: str) -> dict:
    """``{value: rows}`` of one column of a Spark DataFrame (one aggregation, collected)."""
    return {r[0]: int(r[1]) for r in df.groupBy(column).count().collect()}


def stable_hash64_col(seed, *cols):
    """Spark column equal to :func:`dhs_gen.determinism.stable_hash64` of (seed, key).

    The key is the columns joined with ':' (a single column is the common case).
    """
    from pyspark.sql import functions as F

    key = F.concat_ws(":", F.lit(str(seed)), *[F.col(c).cast("string") if isinstance(c, str) else c for c in cols])
    return F.conv(F.substring(F.sha2(key, 256), 1, HASH_HEX_DIGITS), 16, 10).cast("long")


def write_shards(df, partition_fn, dataset_uri: str, schema: pa.Schema, *, compression: str = "none",
                 rows_per_file: int = 1024, count_column: str | None = None,
                 expected_rows: int | None = None) -> dict:
    """Write ``df`` transformed by ``partition_fn`` as Parquet from the Python workers.

    ``partition_fn(batches)`` maps one partition's Arrow batches to an iterator of ``schema``
    tables (setup and teardown per partition are its own). Each task attempt streams its tables
    into shards (:class:`dhs_gen.io.parquet_shards.ShardWriter`); the driver then keeps exactly the
    shards of the successful attempts (:func:`~dhs_gen.io.parquet_shards.commit_shards`).
    ``dataset_uri`` must be absent or empty (jobs write into a fresh staging folder,
    :func:`dhs_gen.storage.staging_output`): nothing already there is deleted.
    Returns {"files", "rows", "counts"}."""
    from pyspark import TaskContext
    from pyspark.sql.pandas.types import from_arrow_schema

    from dhs_gen import storage
    from dhs_gen.io.parquet_shards import SHARD_SCHEMA, ShardWriter, commit_shards, require_no_speculation

    require_no_speculation(df.sparkSession)
    if storage.list_files(dataset_uri):
        raise storage.DatasetError(f"write_shards: {dataset_uri} already holds files; write into an empty folder")
    storage.makedirs(dataset_uri)

    def _run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        task = TaskContext.get()
        writer = ShardWriter(dataset_uri, task.partitionId(), task.attemptNumber(), schema,
                             compression=compression, rows_per_file=rows_per_file, count_column=count_column)
        try:
            for table in partition_fn(batches):
                writer.write(table)
        except BaseException:
            writer.abort()
            raise
        yield writer.close()

    reported = [row.asDict() for row in df.mapInArrow(_run, from_arrow_schema(SHARD_SCHEMA)).collect()]
    return commit_shards(dataset_uri, reported, expected_rows)
