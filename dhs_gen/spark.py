"""The one Spark session builder and the batch-map helpers every job uses.

pyspark is imported inside functions so that ``dhs_gen`` stays importable without it.
Jobs apply numpy functions over Arrow record batches (``mapInArrow``) or pandas frames
(``mapInPandas``); never per-row Python UDFs.
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
    """Apply ``fn`` (RecordBatch -> RecordBatch with ``schema``) to every Arrow batch of ``df``."""
    from pyspark.sql.pandas.types import from_arrow_schema

    def _apply(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            out = fn(batch)
            if out.num_rows:
                yield out

    return df.mapInArrow(_apply, from_arrow_schema(schema))


def map_pandas_batches(df, fn, schema: pa.Schema):
    """Apply ``fn`` (pandas.DataFrame -> pandas.DataFrame) to every batch of ``df``."""
    from pyspark.sql.pandas.types import from_arrow_schema

    def _apply(frames):
        for frame in frames:
            yield fn(frame)

    return df.mapInPandas(_apply, from_arrow_schema(schema))


def stable_hash64_col(seed, *cols):
    """Spark column equal to :func:`dhs_gen.determinism.stable_hash64` of (seed, key).

    The key is the columns joined with ':' (a single column is the common case).
    """
    from pyspark.sql import functions as F

    key = F.concat_ws(":", F.lit(str(seed)), *[F.col(c).cast("string") if isinstance(c, str) else c for c in cols])
    return F.conv(F.substring(F.sha2(key, 256), 1, HASH_HEX_DIGITS), 16, 10).cast("long")
