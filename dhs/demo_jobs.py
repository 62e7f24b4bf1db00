"""Run pipeline jobs the way the cluster does, for ``make demo``: ``spark-submit`` and ``torchrun``.

Each job runs in its own process through its real entry point (``jobs/<name>.py`` under
``spark-submit --master local[N]``), so the demo exercises the same code path as an EMR step.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from dhs_gen.log import get_logger
from dhs_gen.resources import PACKAGES_ROOT

log = get_logger(__name__)

ROOT = PACKAGES_ROOT  # jobs/ beside dhs_gen/: the checkout, or site-packages when installed


class DemoJobError(RuntimeError):
    """A demo job exited non-zero; the message carries its command and the tail of its output."""


def _tool(name: str) -> str:
    """A console script from this interpreter's environment (the venv), else from PATH."""
    local = Path(sys.executable).parent / name
    found = str(local) if local.exists() else shutil.which(name)
    if not found:
        raise DemoJobError(f"{name} not found next to {sys.executable} or on PATH")
    return found


def _env() -> dict:
    env = dict(os.environ)
    env.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    env.setdefault("PYSPARK_PYTHON", sys.executable)
    env.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env


def _run(cmd: list, what: str) -> dict:
    log.info("demo: %s", " ".join(cmd))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(), cwd=str(ROOT))
    if proc.returncode != 0:
        raise DemoJobError(f"{what} exited with {proc.returncode}: {' '.join(cmd)}\n"
                           f"{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    summaries = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    return json.loads(summaries[-1]) if summaries else {}


def spark_submit(job: str, args: list, master: str = "local[2]", driver_memory: str = "4g") -> dict:
    """``spark-submit --master <master> jobs/<job>.py <args>``; returns the job's JSON summary."""
    script = ROOT / "jobs" / f"{job}.py"
    if not script.exists():
        raise DemoJobError(f"no such job script: {script}")
    cmd = [_tool("spark-submit"), "--master", master, "--driver-memory", driver_memory,
           str(script), "--master", master, *[str(a) for a in args]]
    return _run(cmd, f"spark job {job}")


def torchrun(module: str, args: list, nproc: int = 1) -> dict:
    """``torchrun --standalone --nproc_per_node=<nproc> -m <module> <args>``."""
    cmd = [_tool("torchrun"), "--standalone", f"--nproc_per_node={nproc}", "-m", module, *[str(a) for a in args]]
    return _run(cmd, f"torchrun {module}")
