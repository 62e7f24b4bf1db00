"""Mock catalogue job: write MockDR10's Tractor-like catalogue (any size) to Parquet.

The driver plans brick segments (positions only, cheap); executors generate each segment's
rows (``dhs_gen.survey.catalog.catalog_segment``). Same seed => same rows whatever the
partitioning.
"""
from __future__ import annotations

import sys
from typing import Optional

from pydantic import Field

from dhs_gen.config import StrictModel
from dhs_gen.survey.sky import GALAXY_DENSITY, STAR_DENSITY
from jobs.common import job_parser, run_spark_job


class MockCatalogConfig(StrictModel):
    """Mock catalogue configuration (densities per deg^2)."""

    output: str = ""
    n_rows: int = Field(100_000, ge=0)
    seed: int = 0
    galaxy_density: float = Field(GALAXY_DENSITY, ge=0)
    star_density: float = Field(STAR_DENSITY, ge=0)
    include_lrgs: bool = True
    include_lenses: bool = True  # known lenses (lenscat or lens_table) are part of the sky
    lens_table: Optional[str] = None  # noqa: UP045 (pydantic on Python 3.9); None: lenscat
    lens_patches: int = Field(0, ge=0)  # catalogue starts with the cells of this many lenscat DESI lenses
    partitions: int = Field(8, ge=1)


def _body(spark, cfg: MockCatalogConfig, args) -> dict:
    from pyspark.sql.pandas.types import from_arrow_schema

    from dhs_gen.spark import value_counts
    from dhs_gen.storage import mark_complete, to_file_uri
    from dhs_gen.survey.catalog import CATALOG_SCHEMA, CatalogSpec, Segment, catalog_segment, plan_catalog

    output = args.output or cfg.output
    if not output:
        raise SystemExit("mock-catalog: --output (or config output) is required")
    spec = CatalogSpec(seed=cfg.seed, galaxy_density=cfg.galaxy_density, star_density=cfg.star_density,
                       include_lrgs=cfg.include_lrgs, include_lenses=cfg.include_lenses, lens_table=cfg.lens_table,
                       lens_patches=cfg.lens_patches)
    plan = plan_catalog(cfg.n_rows, spec)
    rows = [(i, s.row, s.col0, s.col1, s.n_rows) for i, s in enumerate(plan)]
    segs = spark.createDataFrame(rows or [(0, 0, 0, 0, 0)], "seg long, row long, col0 long, col1 long, n long")
    if not rows:
        segs = segs.limit(0)
    def generate(batches):
        # one segment at a time, in bounded record batches (a segment holds ~30k rows)
        for batch in batches:
            cols = batch.to_pydict()
            for r, c0, c1, n in zip(cols["row"], cols["col0"], cols["col1"], cols["n"]):
                yield from catalog_segment(Segment(r, c0, c1, n), spec).to_batches(max_chunksize=65536)

    segs = segs.repartition(min(cfg.partitions, max(len(rows), 1)), "seg")
    out = segs.mapInArrow(generate, from_arrow_schema(CATALOG_SCHEMA))
    out.write.mode("overwrite").parquet(to_file_uri(output))
    written = spark.read.parquet(to_file_uri(output))
    n_out = written.count()
    by_type = value_counts(written, "type")
    summary = {"rows_requested": cfg.n_rows, "rows_out": n_out, "segments": len(plan), "by_type": by_type,
               "seed": cfg.seed}
    if n_out == cfg.n_rows:
        mark_complete(output, summary)
    return summary


def main(argv=None) -> int:
    parser = job_parser(__doc__.splitlines()[0])
    parser.add_argument("--output", help="output catalogue Parquet URI")
    summary = run_spark_job("mock-catalog", argv, parser, MockCatalogConfig, _body)
    return 0 if summary["rows_out"] == summary["rows_requested"] else 1


if __name__ == "__main__":
    from dhs_gen.entrypoint import run_main

    sys.exit(run_main(main))
