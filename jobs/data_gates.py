"""Job: pre-training data gates on a training manifest; exit status 1 when any gate fails.

Thin entry point over :func:`dhs_gen.catalog.gates.run_manifest_gates`.

Gates: split proportions, label overlap, HEALPix disjointness, weights per tier, and (with
--cutouts) no non-finite pixel in the central box of any stamp. Prints one JSON line with
every gate's verdict and message.
"""
from __future__ import annotations

import argparse
import json
import sys

from dhs_gen.catalog.config import CatalogConfig
from dhs_gen.catalog.gates import run_manifest_gates
from dhs_gen.entrypoint import add_flag, plain_text


def main(argv=None) -> int:
    from dhs_gen.config import load_config
    from dhs_gen.storage import DatasetError, join_uri, overlap, write_json
    from jobs.common import JobInput, check_inputs

    parser = argparse.ArgumentParser(description=plain_text(__doc__))
    add_flag(parser, "--input", "--manifest", dest="manifest", metavar="URI", required=True,
             help="training_manifest dataset URI")
    parser.add_argument("--cutouts", help="cutout_index dataset URI: check the central pixels of every stamp")
    parser.add_argument("--config", help="catalogue YAML config (gates section)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--output", help="directory for _gates.json (default: none)")
    parser.add_argument("--allow-partial", action="store_true", help="read unfinished inputs (no _SUCCESS)")
    args = parser.parse_args(argv)
    cfg = load_config(CatalogConfig, args.config, args.overrides)
    inputs = [JobInput("manifest", args.manifest), JobInput("cutouts", args.cutouts)]
    check_inputs(inputs, args.allow_partial)
    for item in inputs:  # _gates.json replaces nothing but itself: only overlap with an input is refused
        if args.output and item.uri and (how := overlap(args.output, item.uri)):
            raise DatasetError(f"data_gates: --output {args.output} {how} the input {item.role} {item.uri}")
    summary = run_manifest_gates(args.manifest, cfg.gates, args.cutouts)
    if args.output:
        write_json(join_uri(args.output, "_gates.json"), summary)
    print(json.dumps(summary, sort_keys=True, default=str))
    for gate in summary["gates"]:
        if not gate["passed"]:
            print(f"GATE FAILED {gate['name']}: {gate['message']}", file=sys.stderr)
    return 0 if summary["passed"] else 1


if __name__ == "__main__":
    from dhs_gen.entrypoint import run_main

    sys.exit(run_main(main))
