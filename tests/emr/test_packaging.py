"""Packaging: pinned requirements, config rendering, checksums, and one real wheel build."""
from __future__ import annotations

import subprocess
import sys
import zipfile
from importlib import metadata

import pytest

from emr import packaging


def test_pins_core_closure_at_installed_versions():
    pins = packaging.pinned_requirements()
    names = {line.split("==")[0] for line in pins}
    assert f"numpy=={metadata.version('numpy')}" in pins
    assert {"pyarrow", "lenstronomy", "s3fs", "pydantic", "scipy"} <= names
    assert not names & {"pyspark", "py4j", "torch", "pytest", "moto"}  # provided by EMR, or extras only
    assert [line.split("==")[0] for line in pins] == sorted(names)
    assert all(line.count("==") == 1 for line in pins)


def test_python_mismatch_is_refused():
    local = f"{sys.version_info.major}.{sys.version_info.minor}"
    packaging.check_python_matches(local)
    with pytest.raises(RuntimeError, match="pinned from Python"):
        packaging.check_python_matches("3.9" if local != "3.9" else "3.11")


def test_render_config_substitutes_run(tmp_path):
    src = tmp_path / "c.yaml"
    src.write_text("output: '{run}/stamps'\nseed: 3\nregex: 'a{2}'\nother: '{unknown}'\n")
    packaging.render_config(str(src), str(tmp_path / "out" / "c.yaml"), {"run": "s3://b/runs/r1"})
    assert (tmp_path / "out" / "c.yaml").read_text() == (
        "output: 's3://b/runs/r1/stamps'\nseed: 3\nregex: 'a{2}'\nother: '{unknown}'\n")


def test_sha256sums_pass_sha256sum_check(tmp_path):
    (tmp_path / "a.whl").write_bytes(b"abc")
    (tmp_path / "requirements.txt").write_text("x==1\n")
    text = packaging.sha256sums({"a.whl": str(tmp_path / "a.whl"),
                                 "requirements.txt": str(tmp_path / "requirements.txt")})
    (tmp_path / "SHA256SUMS").write_text(text)
    subprocess.run(["sha256sum", "--check", "--strict", "SHA256SUMS"], cwd=tmp_path, check=True, capture_output=True)
    (tmp_path / "a.whl").write_bytes(b"abd")
    assert subprocess.run(["sha256sum", "--check", "SHA256SUMS"], cwd=tmp_path, capture_output=True).returncode != 0


def test_stage_artifacts_builds_wheel_with_jobs_and_presets(tmp_path):
    config = tmp_path / "hc.yaml"
    config.write_text("rows: 10\noutput_hint: '{run}'\n")
    local = f"{sys.version_info.major}.{sys.version_info.minor}"
    staged = packaging.stage_artifacts(str(tmp_path / "art"), {"hc.yaml": str(config)}, {"run": "s3://b/runs/r1"},
                                       local)
    wheel = packaging.wheel_filename()
    assert set(staged) == {wheel, "requirements.txt", "bootstrap/install_dhs.sh", "configs/hc.yaml", "SHA256SUMS"}
    names = set(zipfile.ZipFile(staged[wheel]).namelist())
    assert {"jobs/healthcheck.py", "jobs/common.py", "emr/presets.yaml", "dhs_gen/__init__.py"} <= names
    assert "s3://b/runs/r1" in open(staged["configs/hc.yaml"]).read()
    subprocess.run(["sha256sum", "--check", "--strict", "SHA256SUMS"], cwd=tmp_path / "art", check=True,
                   capture_output=True)


@pytest.mark.slow
@pytest.mark.spark
def test_installed_wheel_runs_a_job_from_its_jobs_package(tmp_path):
    """What the bootstrap + step do on a node: install the wheel, find jobs/, spark-submit a job from it."""
    import json
    import os

    from emr.smoke import smoke_env

    wheel = packaging.build_wheel(str(tmp_path / "dist"))
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), wheel],
                   check=True)
    env = {**smoke_env(), "PYTHONPATH": str(target)}
    jobs_dir = subprocess.run([sys.executable, "-c", "import jobs, os; print(os.path.dirname(jobs.__file__))"],
                              env=env, cwd=tmp_path, capture_output=True, text=True, check=True).stdout.strip()
    assert jobs_dir == str(target / "jobs")
    out = tmp_path / "out"
    subprocess.run(["spark-submit", "--master", "local[2]", os.path.join(jobs_dir, "healthcheck.py"),
                    "--set", "rows=200", "--output", str(out)], env=env, cwd=tmp_path, check=True,
                   capture_output=True)
    summary = json.loads((out / "_summary.json").read_text())
    assert summary["rows_out"] == summary["ok"] == 200
