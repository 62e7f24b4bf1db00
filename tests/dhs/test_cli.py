"""The `dhs` command lists every stage and dispatches to its module."""
from __future__ import annotations

import subprocess
import sys

from dhs import cli


def test_help_lists_every_stage(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for stage in cli.STAGES:
        assert stage in out


def test_unknown_stage(capsys):
    assert cli.main(["no-such-stage"]) == 2
    assert "unknown stage" in capsys.readouterr().err


def test_missing_stage_module_reports_not_implemented(monkeypatch, capsys):
    monkeypatch.setitem(cli.STAGES, "ghost", ("jobs.no_such_job_module", "not there"))
    assert cli.main(["ghost"]) == 3
    assert "not yet implemented" in capsys.readouterr().err


def test_stage_dispatch_passes_arguments(capsys):
    import pytest

    with pytest.raises(SystemExit) as exc:
        cli.main(["healthcheck", "--help"])
    assert exc.value.code == 0 and "--output" in capsys.readouterr().out


def test_console_script_installed():
    out = subprocess.run([sys.executable, "-m", "dhs.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "phase4c" in out.stdout
