"""Packaging: pinned requirements, config rendering, checksums, and one real wheel build."""
from __future__ import annotations

import hashlib
import os
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
                                       local, hasher=lambda pins: {p: ["0" * 64] for p in pins})
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


# ------------------------------------------------------------------ issue 20 (item 10), offline

def _tiny_wheel(folder, name="dhs_probe", version="1.0"):
    """A minimal pure-Python wheel (what `pip download` would leave in a wheelhouse)."""
    path = os.path.join(folder, f"{name}-{version}-py3-none-any.whl")
    info = f"{name}-{version}.dist-info"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{name}.py", "X = 1\n")
        zf.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        zf.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        zf.writestr(f"{info}/RECORD", "")
    return path


def test_hashed_requirements_from_a_wheelhouse_are_accepted_by_pip_and_a_tampered_file_refused(tmp_path):

    house = tmp_path / "wheelhouse"
    house.mkdir()
    wheel = _tiny_wheel(str(house))
    hashes = packaging.requirement_hashes(["dhs-probe==1.0"], str(house),
                                          fetch=lambda url: pytest.fail(f"network used: {url}"))
    assert hashes["dhs-probe==1.0"] == [hashlib.sha256(open(wheel, "rb").read()).hexdigest()]
    req = tmp_path / "requirements.txt"
    req.write_text(packaging.hashed_requirements(hashes))
    cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--no-index", "--find-links", str(house),
           "--require-hashes", "--no-deps", "--target", str(tmp_path / "t"), "-r", str(req)]
    ok = subprocess.run(cmd, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    with zipfile.ZipFile(wheel, "a") as zf:  # the same file name, other bytes
        zf.writestr("evil.py", "import os\n")
    bad = subprocess.run(cmd, capture_output=True, text=True)
    assert bad.returncode != 0 and "HASHES" in bad.stderr.upper()
    assert os.path.exists(wheel)


def test_pins_missing_from_the_wheelhouse_are_hashed_from_pypi_json(tmp_path):
    calls = []

    def fake(url):
        calls.append(url)
        return {"urls": [{"digests": {"sha256": "b" * 64}}, {"digests": {"sha256": "a" * 64}}]}

    hashes = packaging.requirement_hashes(["NumPy==2.0.1"], None, fetch=fake)
    assert hashes == {"NumPy==2.0.1": ["a" * 64, "b" * 64]}
    assert calls == ["https://pypi.org/pypi/numpy/2.0.1/json"]
    with pytest.raises(RuntimeError, match="no distribution hashes"):
        packaging.requirement_hashes(["x==1"], None, fetch=lambda url: {"urls": []})

    def offline(url):
        raise OSError("no route")

    with pytest.raises(RuntimeError, match="DHS_WHEELHOUSE"):
        packaging.requirement_hashes(["x==1"], None, fetch=offline)


def test_staged_requirements_carry_hashes_for_every_pin(tmp_path):
    local = f"{sys.version_info.major}.{sys.version_info.minor}"
    staged = packaging.stage_artifacts(str(tmp_path / "art"), {}, {}, local,
                                       hasher=lambda pins: {p: ["c" * 64] for p in pins})
    text = open(staged["requirements.txt"]).read()
    pins = packaging.pinned_requirements()
    assert text.count("--hash=sha256:") == len(pins) and all(p in text for p in pins)
