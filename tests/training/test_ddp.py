"""A 2-process gloo DDP run under torchrun on tiny data."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import yaml

from training.export import load_frozen_model

from .conftest import train_config


def test_torchrun_two_process_gloo(paired_shards, tmp_path):
    cfg = train_config(paired_shards, tmp_path / "ddp", optim__epochs=2, data__num_workers=1)
    cfg_path = tmp_path / "cfg.yaml"
    cfg_path.write_text(yaml.safe_dump(json.loads(cfg.model_dump_json())))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "DHS_NO_PROGRESS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           "-m", "training.train", "--config", str(cfg_path)],
                          capture_output=True, text=True, env=env, timeout=300, cwd=os.getcwd())
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [json.loads(line) for line in (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 2
    assert rows[0]["val_n"] == 144  # predictions gathered from both ranks, every val row once
    assert all(r["train_images_per_s"] > 0 and r["train_loss"] > 0 for r in rows)  # summed over both ranks
    assert not (tmp_path / "ddp" / ".run.lock").exists()  # rank 0 held the run lock and released it
    assert load_frozen_model(str(tmp_path / "ddp" / "frozen")).model_id
