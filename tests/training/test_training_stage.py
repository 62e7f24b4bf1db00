"""The demo training stage: injection stamps -> shards -> trained, exported demo model."""
from __future__ import annotations

import json

import pytest

from dhs.stages.training import run_demo_stage
from training.export import load_frozen_model

from .conftest import write_stamps_table


def test_demo_stage_trains_from_injection_summary(tmp_path):
    demo = tmp_path / "demo"
    (demo / "injection").mkdir(parents=True)
    stamps = write_stamps_table(tmp_path / "stamps.parquet", 64, size=24)
    with pytest.raises(RuntimeError, match="stamps"):
        run_demo_stage(str(demo / "training"))
    (demo / "injection" / "summary.json").write_text(json.dumps({"stamps": str(stamps)}))
    summary = run_demo_stage(str(demo / "training"), overrides=("optim.epochs=1", "data.num_workers=0",
                                                                  "data.batch_size=16"))
    assert summary["status"] == "ok" and summary["model_id"]
    assert load_frozen_model(summary["frozen"]).model_id == summary["model_id"]
