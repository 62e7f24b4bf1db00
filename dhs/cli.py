"""The ``dhs`` command: one subcommand per pipeline stage.

Each stage is a module with ``main(argv) -> int``; Spark stages live in ``jobs/`` and are also
runnable as ``spark-submit jobs/<name>.py`` or ``python -m jobs.<name>``. Every stage runs through
:func:`dhs_gen.entrypoint.run_main`: usage lines read ``dhs <stage>``, an error is one line and exit
status 2, and ``--debug`` (or ``DHS_DEBUG=1``) adds the traceback.

Adding a command is one line in ``STAGES``: ``"name": ("package.module", "one-line description")``.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from importlib import metadata

from dhs_gen.entrypoint import DEBUG_FLAG, EXIT_ERROR, run_main

# stage name -> (module with main(argv), one-line description); kept in pipeline order.
STAGES: dict[str, tuple[str, str]] = {
    "mock-catalog": ("jobs.mock_catalog", "Generate a Tractor-like catalogue from the mock DR10 survey"),
    "cutouts": ("jobs.cutouts", "Download/render g,r,z cutouts for a manifest (Spark)"),
    "positives": ("jobs.positives", "Known lenses from lenscat crossmatched to Tractor, tiers A/B (Spark)"),
    "negative-pool": ("jobs.negative_pool", "Negative pool cuts, N1/N2 confuser categories (Spark)"),
    "sample-negatives": ("jobs.sample_negatives", "Hash-deterministic stratified negative sampling (Spark)"),
    "splits": ("jobs.splits", "HEALPix spatial train/val/test split relabeling (Spark)"),
    "compact": ("jobs.compact", "Compact small Parquet files, relabel splits, verify counts (Spark)"),
    "training-manifest": ("jobs.training_manifest", "Build the training manifest (Spark)"),
    "data-gates": ("jobs.data_gates", "Pre-training data gates on a training manifest"),
    "phase4a": ("jobs.phase4a_manifest", "Phase 4a: injection manifest, grid or random design (Spark)"),
    "phase4c": ("jobs.phase4c_inject", "Phase 4c: inject lensed sources into host cutouts (Spark)"),
    "phase4d": ("jobs.phase4d_completeness", "Phase 4d: proxy completeness by theta_E/PSF and arc SNR (Spark)"),
    "sync": ("dhs.sync", "Sync a training dataset from S3 to local disk and build training shards"),
    "shards": ("training.data.shards", "Convert stamps/manifest/cutouts into local training shards"),
    "train": ("training.train", "Train a lens finder (run under torchrun)"),
    "evaluate": ("training.evaluate", "Metrics, shortcut gates, calibration and figures for a run"),
    "score": ("jobs.score", "Score stamps/cutouts with a frozen model (Spark, CPU executors)"),
    "score-cutouts": ("dhs.score_cutouts", "Score your own g,r,z cutout files (FITS/npz, or folders) with a frozen model"),
    "completeness": ("jobs.selection_completeness", "Completeness aggregation from scores (Spark)"),
    "selection-function": ("dhs.selection_function", "Selection function C(theta_E, z_l) from scores to figures"),
    "emr": ("emr.launch", "Launch EMR clusters and steps (dry-run prints the requests)"),
    "healthcheck": ("jobs.healthcheck", "Trivial Spark job: checks the session builder and batch map"),
    "ablate": ("dhs.ablate", "Variants x seeds training matrix with paired statistics (configs/ablation.yaml)"),
    "demo": ("dhs.demo", "Run the whole chain on the built-in mock DR10 survey"),
    "bench": ("benchmarks.__main__", "Run the benchmark suite, write build/bench/results.json (needs a checkout)"),
}
DIST_NAME = "dark-halo-scope"


def version() -> str:
    """The installed distribution's version ("unknown" when run from an uninstalled checkout)."""
    try:
        return metadata.version(DIST_NAME)
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser: global options and one subcommand per stage (its options are its own)."""
    parser = argparse.ArgumentParser(
        prog="dhs", description="Dark Halo Scope: strong-lens finding and selection functions on DESI Legacy "
                                "Surveys DR10.",
        epilog="dhs <stage> --help shows a stage's options. Errors print one line and exit 2.")
    parser.add_argument("--version", action="version", version=f"dhs {version()}")
    parser.add_argument(DEBUG_FLAG, action="store_true", help="print the traceback on errors (also DHS_DEBUG=1)")
    stages = parser.add_subparsers(dest="stage", metavar="<stage>", title="stages")
    for name, (_, description) in STAGES.items():
        stages.add_parser(name, help=description, add_help=False)
    return parser


def _stage_main(stage: str):
    """The stage's ``main``, imported when it runs (a missing module is an error, not a skip)."""
    module_name = STAGES[stage][0]

    def main(argv):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                raise ModuleNotFoundError(f"{module_name} is not installed: `dhs {stage}` needs it "
                                          "(install the full project from a checkout)") from exc
            raise
        return module.main(argv)

    return main


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    split = next((i for i, arg in enumerate(argv) if not arg.startswith("-")), len(argv))
    parser = build_parser()
    try:
        args = parser.parse_args(argv[:split + 1])
    except SystemExit as exc:  # --help, --version, an unknown stage: argparse has printed why
        return exc.code if isinstance(exc.code, int) else EXIT_ERROR
    if args.stage is None:
        parser.print_help()
        return 0
    return run_main(_stage_main(args.stage), argv[split + 1:], prog=f"dhs {args.stage}", debug=args.debug)


if __name__ == "__main__":
    sys.exit(main())
