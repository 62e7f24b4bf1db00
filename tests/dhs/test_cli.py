"""The `dhs` command: argparse subcommands, --version, usage lines naming the stage, plain help
text, hidden old flag spellings, and the one error path (one line, exit 2, traceback with --debug)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dhs import cli
from dhs_gen.entrypoint import run_main
from dhs_gen.selection.provenance import ProvenanceError

ROOT = Path(__file__).resolve().parents[2]


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("DHS_DEBUG", "PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON")}
    return {**env, "SPARK_LOCAL_IP": "127.0.0.1", **extra}


def _run(*args, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=ROOT, env=_env(**env),
                          timeout=300)


def test_help_lists_every_stage(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: dhs ")
    for stage in cli.STAGES:
        assert stage in out


def test_version(capsys):
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"dhs {cli.version()}"


def test_unknown_stage(capsys):
    assert cli.main(["no-such-stage"]) == 2
    assert "invalid choice: 'no-such-stage'" in capsys.readouterr().err


def test_missing_stage_module_is_an_error(monkeypatch, capsys):
    monkeypatch.setitem(cli.STAGES, "ghost", ("jobs.no_such_job_module", "not there"))
    assert cli.main(["ghost"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["dhs ghost: error: jobs.no_such_job_module is not installed: `dhs ghost` needs it "
                   "(install the full project from a checkout)"]


@pytest.mark.parametrize("stage", sorted(cli.STAGES))
def test_stage_help_names_the_stage_and_has_no_markup(stage, capsys):
    assert cli.main([stage, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: dhs {stage} "), out[:80]
    for markup in ("``", ":func:", ":class:", ":mod:"):
        assert markup not in out


def test_common_flags_with_old_spellings_hidden(capsys):
    assert cli.main(["phase4c", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--input" in out and "--manifest" not in out and "--config" in out and "--set" in out
    # the old spelling still parses (Makefile, emr steps, demo stages use it)
    import argparse

    from dhs_gen.entrypoint import add_flag

    parser = argparse.ArgumentParser()
    add_flag(parser, "--input", "--manifest", dest="manifest", required=True)
    assert parser.parse_args(["--manifest", "m"]).manifest == parser.parse_args(["--input", "m"]).manifest == "m"


def test_config_typo_is_one_line_exit_2(tmp_path, capsys):
    code = cli.main(["phase4a", "--set", "manifest.host_fractoin=0.1", "--output", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err == ["dhs phase4a: error: <defaults>: invalid configuration: manifest.host_fractoin: "
                   "Extra inputs are not permitted"]


def test_missing_config_file_is_one_line_exit_2(tmp_path, capsys):
    missing = tmp_path / "nope.yaml"
    assert cli.main(["phase4a", "--config", str(missing), "--output", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [f"dhs phase4a: error: no such file or directory: {missing}"]


def test_provenance_error_is_one_line_exit_2_and_debug_adds_the_traceback(capsys):
    def main(argv):
        raise ProvenanceError("model abc123 was trained on 12 rows of the selection set (scores.parquet)")

    assert run_main(main, [], prog="dhs selection-function") == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "dhs selection-function: error: model abc123 was trained on 12 rows of the selection set (scores.parquet)"]
    assert run_main(main, ["--debug"], prog="dhs selection-function") == 2
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):") and "ProvenanceError" in err


def test_unexpected_error_names_type_and_line(capsys):
    def main(argv):
        return {}["missing"]

    assert run_main(main, [], prog="dhs x") == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("dhs x: error: KeyError: 'missing' (raised at ") and "--debug" in line


def test_job_run_as_module_uses_the_same_error_path(tmp_path):
    """`python -m jobs.<name>` (what spark-submit runs): one line, exit 2; DHS_DEBUG=1 -> traceback."""
    args = ["-m", "jobs.phase4a_manifest", "--set", "manifest.nope=1", "--output", str(tmp_path / "o")]
    done = _run(*args)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "phase4a_manifest: error: <defaults>: invalid configuration: manifest.nope: Extra inputs are not permitted"]
    debug = _run(*args, DHS_DEBUG="1")
    assert debug.returncode == 2 and "Traceback (most recent call last)" in debug.stderr


def test_missing_input_dataset_is_one_line_exit_2(tmp_path):
    done = _run("-m", "dhs.cli", "data-gates", "--input", str(tmp_path / "no_manifest"))
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("dhs data-gates: error: ") and str(tmp_path / "no_manifest") in line


def test_spark_workers_get_this_interpreter(monkeypatch):
    monkeypatch.delenv("PYSPARK_PYTHON", raising=False)
    monkeypatch.delenv("PYSPARK_DRIVER_PYTHON", raising=False)
    seen = {}
    assert run_main(lambda argv: seen.update(os.environ) or 0, [], prog="dhs t") == 0
    assert seen["PYSPARK_PYTHON"] == seen["PYSPARK_DRIVER_PYTHON"] == sys.executable
    monkeypatch.setenv("PYSPARK_PYTHON", "/usr/bin/python3.11")  # an explicit choice is kept
    assert run_main(lambda argv: seen.update(os.environ) or 0, [], prog="dhs t") == 0
    assert seen["PYSPARK_PYTHON"] == "/usr/bin/python3.11"


def test_console_script_installed():
    out = _run("-m", "dhs.cli", "--help")
    assert out.returncode == 0 and "phase4c" in out.stdout
