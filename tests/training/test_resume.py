"""--resume after a kill continues exactly: same final weights as an uninterrupted run."""
from __future__ import annotations

import torch

from training.train import load_checkpoint, run

from .conftest import train_config


def test_resume_after_kill_matches_uninterrupted(paired_shards, tmp_path):
    full = train_config(paired_shards, tmp_path / "full", data__num_workers=1)
    run(full)
    part = train_config(paired_shards, tmp_path / "part", data__num_workers=1)
    res = run(part, stop_after_epoch=1)
    assert res["model_id"] is None and load_checkpoint(str(tmp_path / "part" / "last.pt"))["epoch"] == 1
    run(part, resume=True)
    a = load_checkpoint(str(tmp_path / "full" / "last.pt"))
    b = load_checkpoint(str(tmp_path / "part" / "last.pt"))
    assert a["epoch"] == b["epoch"] == 3
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    lines_full = (tmp_path / "full" / "metrics.csv").read_text().splitlines()
    lines_part = (tmp_path / "part" / "metrics.csv").read_text().splitlines()
    assert len(lines_full) == len(lines_part) == 4
