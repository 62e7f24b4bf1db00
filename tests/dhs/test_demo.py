"""The demo orchestrator: resumable stages, FORCE, failures reported."""
from __future__ import annotations

import json
import sys
import types

import pytest

from dhs import demo


@pytest.fixture
def fake_stages(monkeypatch):
    calls = []

    def make(name, status="ok"):
        module = types.ModuleType(f"fake_{name}")

        def run_demo_stage(root, force=False):
            calls.append(name)
            return {"status": status, "root": root}

        module.run_demo_stage = run_demo_stage
        monkeypatch.setitem(sys.modules, f"fake_{name}", module)
        return (name, f"fake_{name}")

    return make, calls


def test_stages_run_once_then_skip_until_forced(tmp_path, fake_stages, monkeypatch):
    make, calls = fake_stages
    monkeypatch.setattr(demo, "DEMO_STAGES", [make("a"), make("b")])
    assert demo.main(["--root", str(tmp_path)]) == 0
    assert calls == ["a", "b"]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["stages"]["a"]["status"] == "ok"
    assert demo.main(["--root", str(tmp_path)]) == 0
    assert calls == ["a", "b"]  # resumed: nothing redone
    assert demo.main(["--root", str(tmp_path), "--force"]) == 0
    assert calls == ["a", "b", "a", "b"]


def test_failed_stage_fails_the_demo(tmp_path, fake_stages, monkeypatch):
    make, _ = fake_stages
    monkeypatch.setattr(demo, "DEMO_STAGES", [make("bad", status="failed")])
    assert demo.main(["--root", str(tmp_path)]) == 1


def test_missing_stage_module_fails_the_demo(tmp_path, fake_stages, monkeypatch):
    make, calls = fake_stages
    monkeypatch.setattr(demo, "DEMO_STAGES", [make("a"), ("ghost", "no_such_pkg.ghost_stage")])
    with pytest.raises(ModuleNotFoundError, match="no_such_pkg"):
        demo.main(["--root", str(tmp_path)])
    assert calls == ["a"]


def test_redo_reruns_one_finished_stage(tmp_path, fake_stages, monkeypatch):
    make, calls = fake_stages
    monkeypatch.setattr(demo, "DEMO_STAGES", [make("a"), make("b")])
    assert demo.main(["--root", str(tmp_path)]) == 0
    assert demo.main(["--root", str(tmp_path), "--redo", "b"]) == 0
    assert calls == ["a", "b", "b"]
