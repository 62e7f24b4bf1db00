"""The whole `make demo` chain (slow): every stage ok, headline numbers present, figures load."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from .browser import check_images_load, find_chromium


@pytest.mark.slow
def test_whole_demo_chain(tmp_path):
    root = tmp_path / "demo"
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}
    proc = subprocess.run([sys.executable, "-m", "dhs.demo", "--root", str(root)],
                          capture_output=True, text=True, env=env, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads((root / "summary.json").read_text())
    assert all(s["status"] == "ok" for s in summary["stages"].values()), summary["stages"]
    heads = summary["headlines"]
    assert 0.5 < heads["test_auc"] <= 1.0
    assert all(heads[f"completeness_theta_e_{t}"] is not None for t in ("1", "1.5", "2"))
    index = root / "report" / "index.html"
    assert "Figures not produced" not in index.read_text()
    chromium = find_chromium()
    if chromium:
        count, broken = check_images_load(str(index), chromium)
        assert count >= 8 and broken == []


def test_report_stage_with_missing_upstream_shows_na(tmp_path):
    """A stage that produced nothing yields 'n/a' in the report, never an invented number."""
    from dhs.stages.report import run_demo_stage
    from dhs_gen.storage import write_json

    write_json(str(tmp_path / "training" / "summary.json"), {"status": "ok", "best_auc": 0.91, "best_epoch": 2})
    write_json(str(tmp_path / "selection_function" / "summary.json"),
               {"status": "ok", "fpr": 0.01, "completeness_at_theta_e": {"1": {"completeness": 0.25}, "2": 0.5}})
    out = run_demo_stage(str(tmp_path / "report"))
    heads = out["headlines"]
    assert heads["test_auc"] is None and heads["completeness_theta_e_1"] == 0.25
    assert heads["completeness_theta_e_1.5"] is None and heads["completeness_theta_e_2"] == 0.5
    html = (tmp_path / "report" / "index.html").read_text()
    assert "n/a" in html and "25%" in html and "0.910" in html
