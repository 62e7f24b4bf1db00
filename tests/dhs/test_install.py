"""A non-editable install (the wheel, as `pip install .` or the EMR bootstrap makes it) works without
the checkout: `dhs --version`, an EMR dry run that finds the shipped configs, and a Spark stage
started from `<venv>/bin/dhs` with no activated venv (its Python workers must use the venv's
interpreter, not the first `python3` on PATH).

Nothing big is reinstalled: the temporary venv sees this project venv's site-packages through a
.pth file (so its third-party packages), and gets only the project's wheel (`--no-deps`).
"""
from __future__ import annotations

import json
import os
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The project's wheel, built the way the EMR launcher builds it (``pip wheel --no-deps``)."""
    wheels = tmp_path_factory.mktemp("wheels")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(wheels), str(ROOT)], check=True, capture_output=True, timeout=300)
    (found,) = wheels.glob("dark_halo_scope-*.whl")
    return found


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """A venv with the project's wheel installed (not editable); returns its bin folder."""
    venv = tmp_path_factory.mktemp("install") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    (purelib,) = (venv / "lib").glob("python3*/site-packages")
    # third-party packages from this venv; its own .pth files (the editable checkout) are not read
    (purelib / "_project_venv.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q",
                    "--no-deps", "--no-index", str(wheel)], check=True, capture_output=True, timeout=300)
    return venv / "bin"


def _clean_env(**extra) -> dict:
    """No venv on PATH, no PYTHONPATH, no PYSPARK_PYTHON: what a user gets typing the full path."""
    drop = ("PYTHONPATH", "PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON", "VIRTUAL_ENV", "DHS_DEBUG")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != venv_bin)
    return {**env, "SPARK_LOCAL_IP": "127.0.0.1", "DHS_NO_PROGRESS": "1", **extra}


def test_wheel_ships_configs_bootstrap_and_licence(wheel):
    """The wheel carries the configs, the bootstrap script, the data, LICENSE and the metadata."""
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    shipped = {f"dhs_gen/_shipped/configs/{p.name}" for p in (ROOT / "configs").glob("*.yaml")}
    assert shipped and shipped <= names
    assert "dhs_gen/_shipped/bootstrap/install_dhs.sh" in names
    assert "dhs_gen/data/lenscat/catalog.csv.gz" in names and "emr/presets.yaml" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert "Requires-Python: <3.12,>=3.11" in metadata and "License-Expression: MIT" in metadata
    assert 'Requires-Dist: torch==2.14.1; extra == "train"' in metadata


def test_installed_dhs_version_and_emr_dry_run(installed, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    env = _clean_env()
    version = subprocess.run([str(installed / "dhs"), "--version"], capture_output=True, text=True, cwd=tmp_path,
                             env=env, timeout=120)
    assert version.returncode == 0 and version.stdout.strip() == "dhs 0.1.0", version.stderr
    where = subprocess.run([str(installed / "python"), "-c",
                            "import dhs, dhs_gen.resources as r; print(dhs.__file__); print(r.configs_dir())"],
                           capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    module_file, configs = where.stdout.split()
    assert module_file.startswith(str(installed.parent)) and configs.startswith(str(installed.parent)), where.stdout

    manifest = tmp_path / "manifest"
    manifest.mkdir()
    pq.write_table(pa.table({"injection_id": ["a", "b", "c"]}), manifest / "part-0.parquet")
    dry = subprocess.run([str(installed / "dhs"), "emr", "phase4c", "--preset", "medium", "--dry-run",
                          "--uri", f"manifest={manifest}"], capture_output=True, text=True, cwd=tmp_path, env=env,
                         timeout=300)
    assert dry.returncode == 0, dry.stderr
    report = json.loads(dry.stdout)
    (upload,) = report["uploads"].values()
    assert upload.startswith(configs) and upload.endswith("phase4c.yaml")  # the shipped config, no checkout
    assert report["estimate"]["steps"][0]["rows"] == 3
    assert "/opt/dhs/jobs/phase4c_inject.py --config" in report["commands"][0]


@pytest.mark.slow
def test_installed_spark_stage_without_activated_venv(installed, tmp_path):
    """Before: workers started `python3` from PATH and failed with `No module named 'jobs'`."""
    out = tmp_path / "healthcheck"
    done = subprocess.run([str(installed / "dhs"), "healthcheck", "--master", "local[1]", "--output", str(out),
                           "--set", "rows=40", "--set", "partitions=2"],
                          capture_output=True, text=True, cwd=tmp_path, env=_clean_env(), timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["rows_out"] == summary["ok"] == 40


def test_every_packaged_data_folder_has_its_licence_stated_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Licence, citation and acknowledgements"):]
    folders = sorted(p.name for p in (ROOT / "dhs_gen" / "data").iterdir() if p.is_dir())
    assert folders and all(f"`{name}/" in section for name in folders), folders
    for credit in ("legacysurvey.org/acknowledgment", "lenscat", "COSMOS", "lenstronomy", "SLACS"):
        assert credit in section


def test_supported_python_agrees_between_metadata_readme_and_ci():
    import tomllib

    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert meta["requires-python"] == ">=3.11,<3.12"
    assert "Python 3.11 is the supported version" in (ROOT / "README.md").read_text()
    assert "python3.11" in (ROOT / ".ci" / "run").read_text()
    assert "Programming Language :: Python :: 3.11" in meta["classifiers"]
