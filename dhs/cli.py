"""The ``dhs`` command: one subcommand per pipeline stage.

Each stage is a module with ``main(argv) -> int``; Spark stages live in ``jobs/`` and are also
runnable as ``spark-submit jobs/<name>.py`` or ``python -m jobs.<name>``.
"""
from __future__ import annotations

import importlib
import sys

# stage name -> (module, one-line description); kept in pipeline order.
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
    "completeness": ("jobs.selection_completeness", "Completeness aggregation from scores (Spark)"),
    "selection-function": ("dhs.selection_function", "Selection function C(theta_E, z_l) from scores to figures"),
    "emr": ("emr.launch", "Launch EMR clusters and steps (dry-run prints the requests)"),
    "healthcheck": ("jobs.healthcheck", "Trivial Spark job: checks the session builder and batch map"),
    "demo": ("dhs.demo", "Run the whole chain on the built-in mock DR10 survey"),
    "bench": ("benchmarks", "Run the benchmark suite, write build/bench/results.json"),
}


def _usage() -> str:
    width = max(len(name) for name in STAGES)
    lines = ["usage: dhs <stage> [options]   (dhs <stage> --help for a stage's options)", "", "stages:"]
    lines += [f"  {name:<{width}}  {desc}" for name, (_, desc) in STAGES.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    stage, rest = argv[0], argv[1:]
    if stage not in STAGES:
        print(f"dhs: unknown stage {stage!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module_name = STAGES[stage][0]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            print(f"dhs {stage}: not yet implemented ({module_name} is missing)", file=sys.stderr)
            return 3
        raise
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
