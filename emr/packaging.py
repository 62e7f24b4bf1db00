"""Packaging for EMR: the project wheel, a pinned requirements file, and the run's artifact set.

The wheel is built with ``pip wheel --no-deps`` from the checkout; the requirements pin the
project's core dependency closure at the versions installed here (PySpark and py4j excluded:
EMR provides them). Pins are only valid for the same Python minor version, so the cluster's
Python must match the one that pinned them.
"""
from __future__ import annotations

import glob
import hashlib
import os
import subprocess
import sys
import tempfile
from typing import Dict, Iterable, List

from dhs_gen.resources import bootstrap_script

DIST_NAME = "dark-halo-scope"
PROVIDED_BY_EMR = frozenset({"pyspark", "py4j"})
BOOTSTRAP_SCRIPT = "install_dhs.sh"


def project_root() -> str:
    """The checkout holding setup.py (the parent of this package)."""
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def project_version() -> str:
    """The installed project's version (from its metadata)."""
    from importlib import metadata

    try:
        return metadata.version(DIST_NAME)
    except metadata.PackageNotFoundError:
        raise RuntimeError(f"{DIST_NAME} is not installed in this Python; run `make venv` first") from None


def wheel_filename(version: str | None = None) -> str:
    """The wheel's file name (pure-Python, any platform)."""
    return f"{DIST_NAME.replace('-', '_')}-{version or project_version()}-py3-none-any.whl"


def pinned_requirements(dist: str = DIST_NAME, exclude: Iterable[str] = PROVIDED_BY_EMR) -> List[str]:
    """``name==version`` for the core (no extras) dependency closure of ``dist``, sorted."""
    from importlib import metadata

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    excluded = {canonicalize_name(name) for name in exclude}
    pins: Dict[str, str] = {}
    stack = list(metadata.requires(dist) or [])
    while stack:
        req = Requirement(stack.pop())
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        name = canonicalize_name(req.name)
        if name in pins or name in excluded:
            continue
        try:
            found = metadata.distribution(req.name)
        except metadata.PackageNotFoundError:
            raise RuntimeError(f"{req.name} (needed by {dist}) is not installed; cannot pin it") from None
        pins[name] = found.version
        stack.extend(found.requires or [])
    return [f"{name}=={version}" for name, version in sorted(pins.items())]


def check_python_matches(cluster_python: str) -> None:
    """RuntimeError when the pins (made by this interpreter) cannot serve the cluster's Python."""
    local = f"{sys.version_info.major}.{sys.version_info.minor}"
    if local != cluster_python:
        raise RuntimeError(f"requirements are pinned from Python {local} but the preset runs Python "
                           f"{cluster_python} on the cluster; launch from a Python {cluster_python} venv "
                           "or choose a preset with a matching python")


def build_wheel(out_dir: str, root: str | None = None) -> str:
    """Build the project wheel into ``out_dir`` (``pip wheel --no-deps``); returns its path."""
    root = root or project_root()
    os.makedirs(out_dir, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="dhs-wheel-") as tmp:
        cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", tmp, root]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"wheel build failed ({' '.join(cmd)}):\n{done.stderr[-4000:]}")
        wheels = glob.glob(os.path.join(tmp, "*.whl"))
        if len(wheels) != 1:
            raise RuntimeError(f"expected one wheel from the build, got {wheels}")
        target = os.path.join(out_dir, os.path.basename(wheels[0]))
        os.replace(wheels[0], target)
    return target


def sha256sums(paths: Dict[str, str]) -> str:
    """``sha256sum -c`` text for ``{name: local_path}``."""
    lines = []
    for name, path in sorted(paths.items()):
        with open(path, "rb") as fh:
            lines.append(f"{hashlib.sha256(fh.read()).hexdigest()}  {name}")
    return "\n".join(lines) + "\n"


def render_config(src: str, dest: str, values: Dict[str, str]) -> None:
    """Copy a YAML config, filling ``{run}`` and the other ``{key}`` placeholders from ``values``."""
    from emr.pipelines import fill

    with open(src, encoding="utf-8") as fh:
        text = fh.read()
    os.makedirs(os.path.dirname(dest) or ".", exist_ok=True)
    with open(dest, "w", encoding="utf-8") as fh:
        fh.write(fill(text, values))


def stage_artifacts(out_dir: str, configs: Dict[str, str], values: Dict[str, str],
                    cluster_python: str) -> Dict[str, str]:
    """Write the run's artifacts locally; returns ``{artifact name: local path}``.

    Artifacts: the wheel, ``requirements.txt``, ``bootstrap/install_dhs.sh``, the configs
    (``configs/<name>``, placeholders filled from ``values``) and ``SHA256SUMS`` over the wheel
    and requirements.
    """
    check_python_matches(cluster_python)
    wheel = build_wheel(out_dir)
    requirements = os.path.join(out_dir, "requirements.txt")
    with open(requirements, "w", encoding="utf-8") as fh:
        fh.write(f"# pinned from Python {cluster_python} for {os.path.basename(wheel)}\n")
        fh.write("\n".join(pinned_requirements()) + "\n")
    artifacts = {os.path.basename(wheel): wheel, "requirements.txt": requirements,
                 f"bootstrap/{BOOTSTRAP_SCRIPT}": str(bootstrap_script(BOOTSTRAP_SCRIPT))}
    for name, src in configs.items():
        dest = os.path.join(out_dir, "configs", name)
        render_config(src, dest, values)
        artifacts[f"configs/{name}"] = dest
    sums = os.path.join(out_dir, "SHA256SUMS")
    with open(sums, "w", encoding="utf-8") as fh:
        fh.write(sha256sums({os.path.basename(wheel): wheel, "requirements.txt": requirements}))
    artifacts["SHA256SUMS"] = sums
    return artifacts
