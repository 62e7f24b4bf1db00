"""Positives: lenscat lenses/candidates crossmatched to a Tractor catalogue (HEALPix join), tiers A/B.

Reads a Tractor/sweep Parquet dataset, writes the ``positives`` dataset (one row per selected
lens; unmatched lenses keep status 'no_tractor_match') and a JSON summary.
"""
from __future__ import annotations

import sys

from dhs_gen.catalog.config import CatalogConfig
from dhs_gen.entrypoint import add_flag
from jobs.common import JobInput, job_parser, run_spark_job


def _body(spark, cfg: CatalogConfig, args) -> dict:
    from dhs_gen.catalog.positives import assemble_positives, match_spark, selected_lenses
    from dhs_gen.catalog.tractor import read_tractor_spark
    from dhs_gen.schemas import validate_table
    from dhs_gen.storage import join_uri, mark_complete, write_parquet

    pc = cfg.positives
    lenses = selected_lenses(pc)
    matches = match_spark(spark, lenses, read_tractor_spark(spark, args.tractor), pc.match_radius_arcsec,
                          pc.join_nside)
    table = assemble_positives(lenses, matches, pc, cfg.splits)
    validate_table(table, "positives")
    write_parquet(table, join_uri(args.output, "part-00000.parquet"))
    frame = table.select(["status", "tier", "split"]).to_pandas()
    summary = {"lenses": len(lenses), "rows_out": table.num_rows,
               "status": frame["status"].value_counts().to_dict(),
               "tier_matched": frame.loc[frame.status == "ok", "tier"].value_counts().to_dict(),
               "split_matched": frame.loc[frame.status == "ok", "split"].value_counts().to_dict()}
    mark_complete(args.output, summary)
    return summary


def main(argv=None) -> int:
    parser = job_parser(__doc__.splitlines()[0])
    add_flag(parser, "--input", "--tractor", dest="tractor", metavar="URI", required=True,
             help="Tractor/sweep Parquet dataset URI")
    parser.add_argument("--output", required=True, help="output positives dataset URI")
    summary = run_spark_job("positives", argv, parser, CatalogConfig, _body,
                            inputs=lambda a, c: [JobInput("tractor", a.tractor, pipeline=False)])
    return 0 if summary["rows_out"] == summary["lenses"] else 1


if __name__ == "__main__":
    from dhs_gen.entrypoint import run_main

    sys.exit(run_main(main))
