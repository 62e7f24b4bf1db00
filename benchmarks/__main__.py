"""Run the benchmark modules, write build/bench/results.json, print a table and regenerate the
benchmark tables in the docs (:mod:`benchmarks.docs`).

Every module ``benchmarks/bench_<name>.py`` exposes ``run(quick: bool = False) -> list[dict]``
(rows made with :func:`benchmarks.timing.entry`, each with its baseline measured in the same run).
``quick=True`` is the smoke mode ``--quick`` selects: the same code paths on tiny inputs, one
repeat, a few seconds per module (``tests/benchmarks`` runs it for every module, so a broken
benchmark fails the test suite); its numbers are not measurements and never reach the docs
(quick runs write build/bench/quick.json unless ``--out`` says otherwise).

``--only`` reruns some modules and merges their rows into the existing results file (the other
modules' rows are kept); every row records the machine, date and git revision it was measured at.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import pkgutil
import platform
import subprocess
import sys
import time
import traceback

import benchmarks as bench_pkg
from dhs_gen.entrypoint import add_flag, plain_text
from dhs_gen.storage import write_json

DEFAULT_RESULTS = "build/bench/results.json"
QUICK_RESULTS = "build/bench/quick.json"


def bench_modules() -> list:
    """Names of every benchmark module (``benchmarks/bench_*.py``), sorted."""
    return sorted(m.name for m in pkgutil.iter_modules(bench_pkg.__path__) if m.name.startswith("bench_"))


def _previous_results(path: str) -> list:
    try:
        with open(path) as fh:
            previous = json.load(fh)
    except (OSError, ValueError):
        return []
    return [] if previous.get("quick") else previous.get("results", [])


def machine_summary(info: dict) -> str:
    """One line naming the machine a row was measured on."""
    cpu = info.get("processor") or "cpu"
    gpu = f", {info['cuda']}" if info.get("cuda") else ""
    return f"{cpu} x{info.get('cpu_count')}{gpu}, {info.get('platform', '')}"


def _git_revision() -> str:
    """HEAD's commit, with ``+dirty`` when tracked files differ from it (the numbers are then of
    the working tree, not of that commit alone)."""
    try:
        head = subprocess.check_output(["git", "rev-parse", "HEAD"], text=True, stderr=subprocess.DEVNULL).strip()
        dirty = subprocess.check_output(["git", "status", "--porcelain", "--untracked-files=no"], text=True,
                                        stderr=subprocess.DEVNULL).strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            return next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), "")
    except OSError:
        return ""


def machine_info() -> dict:
    """Where the numbers were measured."""
    import numpy as np

    info = {"platform": platform.platform(), "python": platform.python_version(),
            "cpu_count": os.cpu_count(), "processor": platform.processor() or _cpu_model(), "numpy": np.__version__}
    try:
        import torch

        info["torch"] = torch.__version__
        info["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError:
        pass
    return info


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=plain_text(__doc__))
    add_flag(parser, "--output", "--out", dest="out", default=None,
             help=f"results JSON path (default {DEFAULT_RESULTS}; {QUICK_RESULTS} with --quick)")
    parser.add_argument("--only", action="append", default=[], help="run only modules whose name contains this")
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny sizes, numbers not meaningful")
    parser.add_argument("--no-docs", action="store_true", help="do not regenerate the docs' benchmark tables")
    args = parser.parse_args(argv)
    out = args.out or (QUICK_RESULTS if args.quick else DEFAULT_RESULTS)
    modules = bench_modules()
    if args.only:
        modules = [m for m in modules if any(o in m for o in args.only)]
    revision, machine = _git_revision(), machine_info()
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    provenance = {"git_revision": revision[:12] + ("+dirty" if revision.endswith("+dirty") else ""), "machine": machine_summary(machine), "created_utc": created,
                  "quick": bool(args.quick)}
    results, failures = [], []
    for name in modules:
        started = time.time()
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        try:
            entries = importlib.import_module(f"benchmarks.{name}").run(quick=args.quick)
            for entry in entries:
                entry.setdefault("module", name)
                entry.update(provenance)
            results.extend(entries)
        except Exception as exc:  # a failing benchmark is recorded, the others still run
            failures.append({"module": name, "error": repr(exc), "traceback": traceback.format_exc()})
        print(f"[bench] {name} done in {time.time() - started:.1f}s", file=sys.stderr, flush=True)
    if args.only:  # keep the rows of the modules not rerun
        results = [r for r in _previous_results(out) if r.get("module") not in modules] + results
    report = {"git_revision": revision, "machine": machine, "created_utc": created, "quick": bool(args.quick),
              "results": results, "failures": failures}
    write_json(out, report)
    width = max([len(r["name"]) for r in results] + [10])
    print(f"{'benchmark':<{width}}  {'value':>12} {'unit':<14} {'baseline':>12}  {'ratio':>8}")
    for r in results:
        base = r.get("baseline_value")
        ratio = r.get("ratio")
        print(f"{r['name']:<{width}}  {r['value']:>12.4g} {r.get('unit', ''):<14} "
              f"{(f'{base:.4g}' if base is not None else '-'):>12}  {(f'{ratio:.2f}' if ratio is not None else '-'):>8}")
    if not args.quick and not args.no_docs and out == DEFAULT_RESULTS:
        from benchmarks.docs import generate

        for path in generate(out):
            print(f"updated {path}")
    print(f"\nwrote {out}" + (f"; {len(failures)} benchmark module(s) failed" if failures else ""))
    print(json.dumps({"failures": [f["module"] for f in failures]}) if failures else "", end="")
    return 1 if failures else 0


if __name__ == "__main__":
    from dhs_gen.entrypoint import run_main

    sys.exit(run_main(main))
