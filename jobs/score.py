"""Score stamps/cutouts with a frozen model or calibrated ensemble (Spark, CPU executors).

Reads any Parquet dataset with an id column and a stamp blob column, scores it batch by batch
with mapInArrow (the model is loaded once per executor Python worker and reused across
partitions), and writes the ``scores`` dataset (id, logit, model_score, model_id, status, plus
``keep_columns``), a ``top_k.parquet`` candidate list and a gallery PNG of the top candidates.
"""
from __future__ import annotations

import sys
from typing import List, Optional

from pydantic import Field

from dhs_gen.config import StrictModel
from jobs.common import JobInput, job_parser, run_spark_job


class ScoreConfig(StrictModel):
    input: str = Field("", description="input Parquet dataset URI (stamps, cutouts, ...)")
    output: str = Field("", description="output scores dataset URI")
    models: List[str] = Field(default_factory=list, description="frozen model directories (2+ = ensemble)")
    calibration: Optional[str] = Field(None, description="calibration.json from dhs evaluate")  # noqa: UP045
    temperature: Optional[float] = Field(None, gt=0, description="explicit T (single model)")  # noqa: UP045
    id_column: str = "id"
    stamp_column: str = "stamp"
    keep_columns: List[str] = Field(default_factory=list, description="input columns copied to the output")
    stamp_size: Optional[int] = Field(None, description="required stamp side [px]")  # noqa: UP045
    batch_size: int = Field(256, ge=1, description="stamps per model call")
    max_records_per_batch: int = Field(512, ge=1, description="Arrow batch rows (bounds executor memory)")
    partitions: int = Field(0, ge=0, description="repartition the input to this many tasks (0 = keep)")
    exclude_trained: bool = Field(True, description="rows a model was trained on get status in_training_set")
    top_k: int = Field(100, ge=0)
    gallery: int = Field(24, ge=0, description="top candidates drawn in top_k.png")


_SCORER_CACHE: dict = {}


def _scorer(models: tuple, calibration: dict | None, temperature: float | None, batch_size: int):
    """Load the scorer once per Python worker (executor side) and reuse it."""
    from training.eval.scoring import load_scorer

    key = (models, repr(calibration), temperature, batch_size)
    if key not in _SCORER_CACHE:
        _SCORER_CACHE.clear()
        _SCORER_CACHE[key] = load_scorer(list(models), calibration=calibration, temperature=temperature,
                                         batch_size=batch_size)
    return _SCORER_CACHE[key]


def score_batch_fn(cfg: ScoreConfig, calibration: dict | None):
    """The executor batch function: RecordBatch of input rows -> RecordBatch of scores."""
    import pyarrow as pa

    models, temperature = tuple(cfg.models), cfg.temperature

    def fn(batch: pa.RecordBatch) -> pa.RecordBatch:
        scorer = _scorer(models, calibration, temperature, cfg.batch_size)
        table = scorer.score_table(batch, id_column=cfg.id_column, stamp_column=cfg.stamp_column,
                                   keep_columns=cfg.keep_columns, size=cfg.stamp_size, batch_size=cfg.batch_size,
                                   exclude_trained=cfg.exclude_trained)
        return table.combine_chunks().to_batches()[0] if table.num_rows else pa.RecordBatch.from_pylist(
            [], schema=table.schema)

    return fn


def output_schema(cfg: ScoreConfig, input_schema):
    """The scores schema plus the kept input columns."""
    from training.eval.scoring import SCORES_SCHEMA

    schema = SCORES_SCHEMA
    for c in cfg.keep_columns:
        if c not in schema.names:
            schema = schema.append(input_schema.field(c))
    return schema


def _resolve(cfg: ScoreConfig, args) -> ScoreConfig:
    """Command-line --input/--output/--model/--calibration override the config."""
    update = {k: getattr(args, k) for k in ("input", "output", "calibration") if getattr(args, k, None)}
    if getattr(args, "model", None):
        update["models"] = list(args.model)
    cfg = cfg.model_copy(update=update)
    if not cfg.input or not cfg.output or not cfg.models:
        raise ValueError("score needs an input, an output and at least one model (--input/--output/--model)")
    return cfg


def _body(spark, cfg: ScoreConfig, args) -> dict:
    import pyarrow.compute as pc
    from pyspark.sql.pandas.types import to_arrow_schema

    from dhs_gen.spark import map_arrow_batches, value_counts
    from dhs_gen.storage import (
        join_uri,
        mark_complete,
        read_json,
        read_parquet,
        to_file_uri,
        write_parquet,
    )
    from training.eval.figures import plot_gallery
    from training.eval.scoring import top_k

    cfg = _resolve(cfg, args)
    calibration = read_json(cfg.calibration) if cfg.calibration else None
    scorer = _scorer(tuple(cfg.models), calibration, cfg.temperature, cfg.batch_size)  # validates on the driver
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(cfg.max_records_per_batch))
    df = spark.read.parquet(to_file_uri(cfg.input))
    if cfg.partitions:
        df = df.repartition(cfg.partitions)
    missing = [c for c in (cfg.id_column, cfg.stamp_column, *cfg.keep_columns) if c not in df.columns]
    if missing:
        raise ValueError(f"{cfg.input} lacks columns {missing}; has {df.columns}")
    schema = output_schema(cfg, to_arrow_schema(df.schema))
    cols = list(dict.fromkeys([cfg.id_column, cfg.stamp_column, *cfg.keep_columns, *scorer.meta_columns,
                               *[c for c in ("status", "cutout_ok", "stamp_size", "size") if c in df.columns]]))
    out = map_arrow_batches(df.select(*cols), score_batch_fn(cfg, calibration), schema)
    out.write.mode("overwrite").parquet(to_file_uri(cfg.output))

    written = spark.read.parquet(to_file_uri(cfg.output))
    counts = value_counts(written, "status")
    summary = {"rows_in": df.count(), "rows_out": sum(counts.values()), "status_counts": counts,
               "model_id": scorer.model_id, "temperature": scorer.temperature}
    if cfg.top_k:
        top = top_k(read_parquet(cfg.output, columns=list(SCORE_COLUMNS)), cfg.top_k)
        top_dir = (getattr(args, "final_output", None) or cfg.output).rstrip("/") + "_top_k"
        write_parquet(top, join_uri(top_dir, "top_k.parquet"))
        summary["top_k"] = top.num_rows
        if cfg.gallery and top.num_rows:
            ids = top.column("id").to_pylist()[:cfg.gallery]
            stamps = read_parquet(cfg.input, columns=[cfg.id_column, cfg.stamp_column],
                                  filters=pc.field(cfg.id_column).isin(ids))
            summary["gallery"] = plot_gallery(stamps, top.slice(0, cfg.gallery), join_uri(top_dir, "top_k.png"),
                                              id_column=cfg.id_column, stamp_column=cfg.stamp_column)
    mark_complete(cfg.output, summary)
    return summary


SCORE_COLUMNS = ("id", "logit", "model_score", "model_id", "status")


def main(argv=None) -> int:
    parser = job_parser(__doc__.splitlines()[0])
    parser.add_argument("--input", help="input dataset URI (overrides config input)")
    parser.add_argument("--output", help="output scores URI (overrides config output)")
    parser.add_argument("--model", action="append", default=[], help="frozen model dir (repeat for an ensemble)")
    parser.add_argument("--calibration", help="calibration.json from dhs evaluate")
    summary = run_spark_job("score", argv, parser, ScoreConfig, _body,
                            inputs=lambda a, c: [JobInput("input", a.input or c.input)])
    return 0 if summary["rows_out"] == summary["rows_in"] else 1


if __name__ == "__main__":
    from dhs_gen.entrypoint import run_main

    sys.exit(run_main(main))
