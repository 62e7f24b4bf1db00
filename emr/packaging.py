"""Packaging for EMR: the project wheel, a pinned requirements file, and the run's artifact set.

The wheel is built with ``pip wheel --no-deps`` from the checkout; the requirements pin the
project's core dependency closure at the versions installed here (PySpark and py4j excluded:
EMR provides them). Pins are only valid for the same Python minor version, so the cluster's
Python must match the one that pinned them.

Every pin carries the SHA-256 of each distribution file of that release (``--hash=sha256:…``), so
the bootstrap installs with ``pip install --require-hashes``: a file that differs from what was
pinned fails the install. The hashes come from a local wheelhouse (``$DHS_WHEELHOUSE``, e.g.
filled by ``pip download -d wheelhouse -r requirements.txt``; hashed here like ``pip hash``) and,
for any pin not found there, from PyPI's JSON API (``https://pypi.org/pypi/<name>/<version>/json``).
"""
from __future__ import annotations

import glob
import hashlib
import os
import subprocess
import sys
import tempfile
from typing import Callable, Dict, Iterable, List

from dhs_gen.resources import bootstrap_script

DIST_NAME = "dark-halo-scope"
PROVIDED_BY_EMR = frozenset({"pyspark", "py4j"})
BOOTSTRAP_SCRIPT = "install_dhs.sh"
PYPI_JSON = "https://pypi.org/pypi/{name}/{version}/json"


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


def _pin(line: str) -> tuple:
    from packaging.utils import canonicalize_name

    name, version = line.split("==", 1)
    return canonicalize_name(name), version


def wheelhouse_hashes(folder: str) -> Dict[tuple, List[str]]:
    """``{(name, version): [sha256, ...]}`` of the wheels and sdists in a local folder (offline)."""
    from packaging.utils import (
        InvalidSdistFilename,
        InvalidWheelFilename,
        parse_sdist_filename,
        parse_wheel_filename,
    )

    found: Dict[tuple, List[str]] = {}
    for path in sorted(glob.glob(os.path.join(folder, "*"))):
        base = os.path.basename(path)
        try:
            name, version = (parse_wheel_filename(base) if base.endswith(".whl") else parse_sdist_filename(base))[:2]
        except (InvalidWheelFilename, InvalidSdistFilename):
            continue
        with open(path, "rb") as fh:
            digest = hashlib.sha256(fh.read()).hexdigest()
        found.setdefault((str(name), str(version)), []).append(digest)
    return found


def _fetch_json(url: str) -> dict:
    import json
    import urllib.request

    with urllib.request.urlopen(url, timeout=30) as resp:  # noqa: S310 - a fixed https URL
        return json.load(resp)


def pypi_hashes(name: str, version: str, fetch: Callable[[str], dict] = _fetch_json) -> List[str]:
    """SHA-256 of every file PyPI lists for ``name==version`` (all platforms' wheels and the sdist)."""
    release = fetch(PYPI_JSON.format(name=name, version=version))
    return sorted({f["digests"]["sha256"] for f in release.get("urls", []) if f.get("digests", {}).get("sha256")})


def requirement_hashes(pins: Iterable[str], wheelhouse: str | None = None,
                       fetch: Callable[[str], dict] = _fetch_json) -> Dict[str, List[str]]:
    """``{pin: [sha256, ...]}`` for ``name==version`` pins: the wheelhouse first, PyPI for the rest.

    RuntimeError naming the pins for which no hash could be found."""
    local = wheelhouse_hashes(wheelhouse) if wheelhouse else {}
    hashes, missing = {}, []
    for pin in pins:
        name, version = _pin(pin)
        digests = sorted(local.get((name, version), []))
        if not digests:
            try:
                digests = pypi_hashes(name, version, fetch)
            except OSError as exc:
                raise RuntimeError(f"cannot hash {pin}: PyPI unreachable ({exc}); fill a wheelhouse with "
                                   "`pip download -d DIR -r requirements.txt` and set DHS_WHEELHOUSE=DIR") from None
        if not digests:
            missing.append(pin)
        hashes[pin] = digests
    if missing:
        raise RuntimeError(f"no distribution hashes found for {missing}")
    return hashes


def hashed_requirements(hashes: Dict[str, List[str]]) -> str:
    """``requirements.txt`` text for ``pip install --require-hashes``: one pin per entry, each with
    a ``--hash=sha256:…`` per distribution file."""
    blocks = []
    for pin in sorted(hashes):
        lines = [pin] + [f"    --hash=sha256:{h}" for h in hashes[pin]]
        blocks.append(" \\\n".join(lines))
    return "\n".join(blocks) + "\n"


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
                    cluster_python: str, hasher: Callable[[List[str]], Dict[str, List[str]]] | None = None
                    ) -> Dict[str, str]:
    """Write the run's artifacts locally; returns ``{artifact name: local path}``.

    ``hasher(pins)`` returns each pin's distribution hashes (default :func:`requirement_hashes`
    with ``$DHS_WHEELHOUSE``).
    Artifacts: the wheel, ``requirements.txt`` (pins with hashes), ``bootstrap/install_dhs.sh``, the configs
    (``configs/<name>``, placeholders filled from ``values``) and ``SHA256SUMS`` over the wheel
    and requirements.
    """
    check_python_matches(cluster_python)
    wheel = build_wheel(out_dir)
    requirements = os.path.join(out_dir, "requirements.txt")
    hasher = hasher or (lambda pins: requirement_hashes(pins, os.environ.get("DHS_WHEELHOUSE")))
    with open(requirements, "w", encoding="utf-8") as fh:
        fh.write(f"# pinned from Python {cluster_python} for {os.path.basename(wheel)}; "
                 "install with pip install --require-hashes\n")
        fh.write(hashed_requirements(hasher(pinned_requirements())))
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
