"""``make demo``: the whole chain on one machine on the built-in mock DR10 survey.

Stages run in order through the same code paths the cluster uses (``spark-submit --master
local[2]`` for Spark jobs, ``torchrun`` with one process for training; see dhs.demo_jobs); each
writes a JSON summary under build/demo/<stage>/ and is skipped on a rerun once finished
(``--force`` redoes them). ``build/demo/summary.json`` holds the headline numbers and every
stage summary; ``build/demo/report/index.html`` is the page to look at.
A stage whose module cannot be imported fails the demo like any other failing stage.
"""
from __future__ import annotations

import argparse
import importlib
import sys
import time

from dhs_gen.entrypoint import add_flag, plain_text
from dhs_gen.log import get_logger, setup_logging
from dhs_gen.storage import exists, join_uri, read_json, write_json

log = get_logger(__name__)

DEMO_ROOT = "build/demo"

# (stage name, module providing run_demo_stage(root, force) -> dict summary)
DEMO_STAGES = [
    ("survey", "dhs.stages.survey"),
    ("catalogue", "dhs.stages.catalogue"),
    ("injection", "dhs.stages.injection"),
    ("training", "dhs.stages.training"),
    ("evaluation", "dhs.stages.evaluation"),
    ("selection_function", "dhs.stages.selection_function"),
    ("report", "dhs.stages.report"),
]


def run_stage(name: str, module_name: str, root: str, force: bool) -> dict:
    """Run one demo stage unless its summary already exists (resumable)."""
    summary_uri = join_uri(root, name, "summary.json")
    if exists(summary_uri) and not force:
        log.info("stage %s: already done (FORCE=1 to redo)", name)
        return {**read_json(summary_uri), "skipped": True}
    module = importlib.import_module(module_name)
    started = time.time()
    print(f"[demo] stage {name}: running", flush=True)
    summary = dict(module.run_demo_stage(join_uri(root, name), force=force))
    summary.update({"stage": name, "status": summary.get("status", "ok"),
                    "wall_seconds": round(time.time() - started, 2)})
    write_json(summary_uri, summary)
    print(f"[demo] stage {name}: {summary['status']} in {summary['wall_seconds']:.1f}s", flush=True)
    return summary


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=plain_text(__doc__))
    add_flag(parser, "--output", "--root", dest="root", default=DEMO_ROOT, help="demo output folder")
    parser.add_argument("--force", action="store_true", help="redo finished stages")
    parser.add_argument("--redo", action="append", default=[], metavar="STAGE",
                        choices=[name for name, _ in DEMO_STAGES], help="redo this finished stage (repeatable)")
    args = parser.parse_args(argv)
    setup_logging()
    summaries = {name: run_stage(name, module, args.root, args.force or name in args.redo)
                 for name, module in DEMO_STAGES}
    headlines = summaries.get("report", {}).get("headlines")
    write_json(join_uri(args.root, "summary.json"), {"headlines": headlines, "stages": summaries})
    failed = [n for n, s in summaries.items() if s.get("status") != "ok"]
    print(f"[demo] done: {len(summaries)} stages, failed: {failed or 'none'}; summary in {args.root}/summary.json")
    return 1 if failed else 0


if __name__ == "__main__":
    from dhs_gen.entrypoint import run_main

    sys.exit(run_main(main))
