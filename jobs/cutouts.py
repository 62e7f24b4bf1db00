"""Cutout download job: manifest (galaxy_id, ra, dec, ...) -> one cutout_index row per input row.

Layout of the output dataset (Hive-partitioned, readable as one dataset):
``<output>/run=<n>/fetched=true|false/part-*.parquet``. A rerun skips galaxies already fetched
(``fetched=true`` in a committed run), retries everything else into a new run, then deletes the
superseded ``fetched=false`` partitions of older runs, so every manifest row appears exactly once.
A run directory without Spark's ``_SUCCESS`` (a killed run) is deleted at the next start and never
read; the dataset's own ``_SUCCESS`` (with the summary) is written last.
"""
from __future__ import annotations

import re
import sys

from dhs_gen.config import StrictModel
from dhs_gen.entrypoint import add_flag
from dhs_gen.log import get_logger
from dhs_gen.survey.providers import ProviderConfig
from jobs.common import JobInput, job_parser, run_spark_job

log = get_logger(__name__)
_RUN = re.compile(r"run=(\d+)$")


class CutoutsConfig(StrictModel):
    """Cutout job configuration (``manifest``/``output`` may also come from the command line)."""

    manifest: str = ""
    output: str = ""
    size: int = 101
    central_box: int = 50
    partitions: int = 8
    id_column: str = "galaxy_id"
    provider: ProviderConfig = ProviderConfig()


def _runs(output: str) -> dict:
    """{run number: (uri, committed)} of the run directories under ``output``."""
    from dhs_gen.storage import exists, get_fs, join_uri

    fs, path = get_fs(output)
    if not fs.exists(path):
        return {}
    runs = {}
    for entry in fs.ls(path, detail=False):
        m = _RUN.search(entry.rstrip("/"))
        if m:
            uri = join_uri(output, f"run={m.group(1)}")
            runs[int(m.group(1))] = (uri, exists(join_uri(uri, "_SUCCESS")))
    return runs


def prepare_output(output: str) -> list:
    """Delete killed (uncommitted) runs and the superseded failures of all but the latest
    committed run; drop the dataset's _SUCCESS. Returns the committed run numbers, ascending."""
    from dhs_gen.storage import join_uri, remove

    remove(join_uri(output, "_SUCCESS"))
    runs = _runs(output)
    for uri, committed in runs.values():
        if not committed:
            log.warning("removing uncommitted run %s (killed earlier?)", uri)
            remove(uri)
    committed = sorted(n for n, (_, ok) in runs.items() if ok)
    for n in committed[:-1]:
        remove(join_uri(runs[n][0], "fetched=false"))
    return committed


def _body(spark, cfg: CutoutsConfig, args) -> dict:
    from pyspark.sql import functions as F

    from dhs_gen.spark import map_arrow_batches, value_counts
    from dhs_gen.storage import join_uri, mark_complete, to_file_uri
    from dhs_gen.survey.cutout_batch import SCHEMA, fetch_batch

    manifest_uri = args.manifest or cfg.manifest
    output = args.output or cfg.output
    if not manifest_uri or not output:
        raise SystemExit("cutouts: --manifest and --output (or config manifest/output) are required")
    id_col = cfg.id_column
    manifest = spark.read.parquet(to_file_uri(manifest_uri))
    missing = [c for c in (id_col, "ra", "dec") if c not in manifest.columns]
    if missing:
        raise SystemExit(f"cutouts: manifest {manifest_uri} lacks columns {missing}")
    keep = [c for c in manifest.columns if c in {id_col, "ra", "dec", "ebv"} or c.startswith(("psfsize_", "psfdepth_"))]
    keep = [c for c in keep if not (c.startswith("psfdepth_") and not c.endswith("_mag5"))]
    manifest = manifest.select(*keep)
    n_in = manifest.count()
    n_unique = manifest.select(id_col).distinct().count()
    if n_unique != n_in:
        raise SystemExit(f"cutouts: manifest has {n_in - n_unique} duplicate {id_col} values; ids must be unique")

    committed = prepare_output(output)
    done = None
    if committed:
        prev = spark.read.option("basePath", to_file_uri(output)).parquet(
            *[to_file_uri(join_uri(output, f"run={n}")) for n in committed])
        done = prev.filter(F.col("fetched").cast("string") == "true").select(F.col("galaxy_id").alias(id_col)).distinct()
    todo = manifest if done is None else manifest.join(done, id_col, "left_anti")
    n_todo = todo.count()
    run = (committed[-1] + 1) if committed else 0
    log.info("cutouts: %d manifest rows, %d already fetched, fetching %d as run %d with provider %s",
             n_in, n_in - n_todo, n_todo, run, cfg.provider.kind)
    if n_todo:
        provider_cfg = cfg.provider.model_dump()
        size, box = cfg.size, cfg.central_box
        fetched = map_arrow_batches(todo.repartition(cfg.partitions),
                                    lambda b: fetch_batch(b, provider_cfg, size, box, id_col), SCHEMA)
        fetched = fetched.withColumn("fetched", F.col("status") == "ok")
        # uncompressed: the float32 cutouts do not compress (zstd: a few percent) and phase 4c reads
        # them at twice the CPU through a codec (bench rows phase4c.cutout_read.*)
        fetched.write.mode("errorifexists").option("compression", "none").partitionBy("fetched") \
            .parquet(to_file_uri(join_uri(output, f"run={run}")))
        committed = prepare_output(output)
        log.info("cutouts: run %d committed", run)

    result = spark.read.parquet(to_file_uri(output))
    counts = value_counts(result, "status")
    rows_out = sum(counts.values())
    n_ids = result.select("galaxy_id").distinct().count()
    summary = {
        "rows_in": n_in, "rows_out": rows_out, "distinct_ids_out": n_ids,
        "skipped_already_fetched": n_in - n_todo, "attempted_this_run": n_todo, "run": run if n_todo else None,
        "ok": counts.get("ok", 0), "failed": rows_out - counts.get("ok", 0), "status_counts": counts,
        "cutout_ok": result.filter(F.col("cutout_ok")).count(), "provider": cfg.provider.kind,
    }
    if rows_out == n_in == n_ids:
        mark_complete(output, summary)
    else:
        log.error("row accounting failed: %s", summary)
    return summary


def main(argv=None) -> int:
    parser = job_parser(__doc__.splitlines()[0])
    add_flag(parser, "--input", "--manifest", dest="manifest", metavar="URI",
             help="input manifest Parquet URI (galaxy_id, ra, dec, ...)")
    parser.add_argument("--output", help="output cutout_index dataset URI")
    # Resumable: the output is updated in place (run=N folders), never staged and swapped.
    summary = run_spark_job("cutouts", argv, parser, CutoutsConfig, _body, stage_output=False, own_entries=r"run=\d+",
                            inputs=lambda a, c: [JobInput("manifest", a.manifest or c.manifest, pipeline=False)])
    return 0 if summary["rows_out"] == summary["rows_in"] == summary["distinct_ids_out"] else 1


if __name__ == "__main__":
    from dhs_gen.entrypoint import run_main

    sys.exit(run_main(main))
