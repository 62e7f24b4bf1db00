"""Run every benchmark module and write build/bench/results.json; print a table."""
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


def _git_revision() -> str:
    try:
        return subprocess.check_output(["git", "rev-parse", "HEAD"], text=True, stderr=subprocess.DEVNULL).strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine_info() -> dict:
    """Where the numbers were measured."""
    import numpy as np

    info = {"platform": platform.platform(), "python": platform.python_version(),
            "cpu_count": os.cpu_count(), "processor": platform.processor(), "numpy": np.__version__}
    try:
        import torch

        info["torch"] = torch.__version__
        info["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError:
        pass
    return info


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=plain_text(__doc__))
    add_flag(parser, "--output", "--out", dest="out", default="build/bench/results.json", help="results JSON path")
    parser.add_argument("--only", action="append", default=[], help="run only modules whose name contains this")
    parser.add_argument("--quick", action="store_true", help="smaller sizes (smoke)")
    args = parser.parse_args(argv)
    modules = sorted(m.name for m in pkgutil.iter_modules(bench_pkg.__path__) if m.name.startswith("bench_"))
    if args.only:
        modules = [m for m in modules if any(o in m for o in args.only)]
    results, failures = [], []
    for name in modules:
        started = time.time()
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        try:
            entries = importlib.import_module(f"benchmarks.{name}").run(quick=args.quick)
            for entry in entries:
                entry.setdefault("module", name)
            results.extend(entries)
        except Exception as exc:  # a failing benchmark is recorded, the others still run
            failures.append({"module": name, "error": repr(exc), "traceback": traceback.format_exc()})
        print(f"[bench] {name} done in {time.time() - started:.1f}s", file=sys.stderr, flush=True)
    report = {"git_revision": _git_revision(), "machine": machine_info(),
              "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "results": results, "failures": failures}
    write_json(args.out, report)
    width = max([len(r["name"]) for r in results] + [10])
    print(f"{'benchmark':<{width}}  {'value':>12} {'unit':<14} {'baseline':>12}  {'ratio':>8}")
    for r in results:
        base = r.get("baseline_value")
        ratio = r.get("ratio")
        print(f"{r['name']:<{width}}  {r['value']:>12.4g} {r.get('unit', ''):<14} "
              f"{(f'{base:.4g}' if base is not None else '-'):>12}  {(f'{ratio:.2f}' if ratio is not None else '-'):>8}")
    print(f"\nwrote {args.out}" + (f"; {len(failures)} benchmark module(s) failed" if failures else ""))
    print(json.dumps({"failures": [f["module"] for f in failures]}) if failures else "", end="")
    return 1 if failures else 0


if __name__ == "__main__":
    from dhs_gen.entrypoint import run_main

    sys.exit(run_main(main))
