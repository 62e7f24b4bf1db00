"""Pre-training data gates on a training manifest; exit status 1 when any gate fails.

Gates: split proportions, label overlap, HEALPix disjointness, weights per tier, and (with
--cutouts) no non-finite pixel in the central box of any stamp. Prints one JSON line with
every gate's verdict and message.
"""
from __future__ import annotations

import argparse
import json
import sys

from dhs_gen.catalog.config import CatalogConfig


def run_gates(manifest_uri: str, cfg: CatalogConfig, cutouts_uri: str | None = None) -> dict:
    """Evaluate the gates on a manifest dataset (and its cutouts); return the JSON summary."""
    import pyarrow.compute as pc

    from dhs_gen.catalog.gates import manifest_gates
    from dhs_gen.storage import read_parquet

    manifest = read_parquet(manifest_uri).to_pandas()
    if manifest.empty:
        raise ValueError(f"{manifest_uri}: the training manifest is empty")
    stamps = None
    if cutouts_uri:
        cut = read_parquet(cutouts_uri, columns=["galaxy_id", "cutout"])
        cut = cut.filter(pc.is_in(cut.column("galaxy_id"), value_set=pc.unique(
            read_parquet(manifest_uri, columns=["galaxy_id"]).column("galaxy_id"))))
        found = set(cut.column("galaxy_id").to_pylist())
        missing = [g for g in manifest["galaxy_id"] if g not in found]
        stamps = (cut.column("galaxy_id").to_pylist() + missing,
                  cut.column("cutout").to_pylist() + [None] * len(missing))
    g = cfg.gates
    results = manifest_gates(manifest, g.split_fractions, {k: tuple(v) for k, v in g.tier_weights.items()},
                             g.split_tolerance, "healpix_128", stamps, g.central_box_pixels)
    return {"job": "data_gates", "manifest": manifest_uri, "rows": len(manifest),
            "gates": [r.to_dict() for r in results], "passed": all(r.passed for r in results)}


def main(argv=None) -> int:
    from dhs_gen.config import load_config
    from dhs_gen.storage import join_uri, write_json

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", required=True, help="training_manifest dataset URI")
    parser.add_argument("--cutouts", help="cutout_index dataset URI: check the central pixels of every stamp")
    parser.add_argument("--config", help="catalogue YAML config (gates section)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--output", help="directory for _gates.json (default: none)")
    args = parser.parse_args(argv)
    cfg = load_config(CatalogConfig, args.config, args.overrides)
    summary = run_gates(args.manifest, cfg, args.cutouts)
    if args.output:
        write_json(join_uri(args.output, "_gates.json"), summary)
    print(json.dumps(summary, sort_keys=True, default=str))
    for gate in summary["gates"]:
        if not gate["passed"]:
            print(f"GATE FAILED {gate['name']}: {gate['message']}", file=sys.stderr)
    return 0 if summary["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
