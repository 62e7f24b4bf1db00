"""Every benchmark module runs in --quick mode (so a broken benchmark fails the suite), and the
docs' benchmark tables are generated from the results file."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.__main__ import bench_modules

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("module", bench_modules())
def test_every_bench_module_runs_quick(module, tmp_path):
    out = tmp_path / "quick.json"
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--only", module, "--output", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    report = json.loads(out.read_text())
    assert proc.returncode == 0 and not report["failures"], \
        (report["failures"][0]["traceback"] if report["failures"] else proc.stderr[-3000:])
    rows = [r for r in report["results"] if r["module"] == module]
    assert rows and report["quick"] is True
    for r in rows:
        assert r["name"] and r["unit"] is not None and math.isfinite(r["value"]), r
        assert r["quick"] is True and r["git_revision"] and r["machine"] and r["created_utc"]


def _row(name, module, value, baseline=None, quick=False):
    return {"name": name, "module": module, "value": value, "unit": "x/s", "baseline_name": "the old way",
            "baseline_value": baseline, "ratio": None if baseline is None else value / baseline, "target": ">= 2x",
            "notes": "n rows", "git_revision": "abcdef123456", "machine": "TestCPU x2", "created_utc":
            "2026-12-04T20:00:00Z", "quick": quick}


def test_docs_tables_come_from_the_results_file(tmp_path):
    from benchmarks.docs import generate

    (tmp_path / "docs").mkdir()
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- bench:begin alpha. -->\nstale 99x\n<!-- bench:end -->\noutro\n")
    other = tmp_path / "docs" / "topic.md"
    other.write_text("no markers, 7x by hand stays\n")
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"results": [_row("alpha.speed", "bench_alpha", 30.0, 10.0),
                                               _row("beta.speed", "bench_beta", 5.0),
                                               _row("alpha.smoke", "bench_alpha", 1.0, quick=True)],
                                   "failures": []}))
    changed = generate(str(results), root=tmp_path)
    text = readme.read_text()
    assert "stale 99x" not in text and text.startswith("intro\n") and text.endswith("<!-- bench:end -->\noutro\n")
    assert "`alpha.speed`" in text and "3x" in text and "beta.speed" not in text and "alpha.smoke" not in text
    page = (tmp_path / "docs" / "benchmarks.md").read_text()
    for expected in ("## bench_alpha", "## bench_beta", "TestCPU x2", "2026-12-04 @ abcdef1", "the old way"):
        assert expected in page
    assert "alpha.smoke" not in page  # smoke numbers never reach the docs
    assert other.read_text() == "no markers, 7x by hand stays\n" and other not in changed
    assert generate(str(results), root=tmp_path) == []  # idempotent


def test_only_merges_into_the_previous_results(tmp_path, monkeypatch):
    from benchmarks import __main__ as bench_main

    out = tmp_path / "results.json"
    out.write_text(json.dumps({"quick": False, "results": [_row("kept.row", "bench_kept", 1.0),
                                                           _row("old.row", "bench_survey", 2.0)]}))

    class FakeModule:
        @staticmethod
        def run(quick=False):
            return [{"name": "new.row", "value": 3.0, "unit": "x"}]

    monkeypatch.setattr(bench_main.importlib, "import_module", lambda name: FakeModule)
    assert bench_main.main(["--only", "bench_survey", "--output", str(out)]) == 0
    rows = {r["name"]: r for r in json.loads(out.read_text())["results"]}
    assert set(rows) == {"kept.row", "new.row"}
    assert rows["new.row"]["module"] == "bench_survey" and rows["new.row"]["git_revision"]
