"""``make demo`` training stage: shard the injection stage's stamps and train the demo model.

Reads ``<demo root>/injection/summary.json`` (its ``stamps`` dataset URI), converts the stamps
to local shards under ``<root>/shards``, trains ``configs/train_demo.yaml`` under
``torchrun --standalone --nproc_per_node=1`` (CPU, small CNN, paired mode) into ``<root>/run`` and exports the frozen model to
``<root>/run/frozen``. The summary's ``out_dir`` is what the evaluation stage reads.
"""
from __future__ import annotations

import posixpath

from dhs_gen.resources import config_path

CONFIG = config_path("train_demo.yaml")


def run_demo_stage(root: str, force: bool = False, overrides: tuple = ()) -> dict:
    """Train the demo model; returns the stage summary (``out_dir``, ``model_id``, metrics)."""
    from dhs.demo_jobs import torchrun
    from dhs_gen.config import load_config
    from dhs_gen.storage import exists, join_uri, read_json
    from training.data.shards import convert_to_shards
    from training.train import TrainConfig

    demo_root = posixpath.dirname(str(root).rstrip("/"))
    injection = join_uri(demo_root, "injection", "summary.json")
    stamps = read_json(injection).get("stamps") if exists(injection) else None
    if not stamps:
        raise RuntimeError(f"training demo needs the injection stage's stamps: {injection} has no 'stamps'")
    index = convert_to_shards(stamps, join_uri(root, "shards"), force=force)
    out_dir = join_uri(root, "run")
    sets = [f"data.shards={index}", f"run.out_dir={out_dir}", *overrides]
    load_config(TrainConfig, str(CONFIG), sets)  # fail fast on a bad override, before torchrun starts
    result = torchrun("training.train", ["--config", str(CONFIG), *[a for s in sets for a in ("--set", s)]])
    keep = ("epoch", "train_loss", "val_loss", "val_auc", "val_ece", "best_auc", "best_epoch", "model_id")
    return {"status": "ok", "out_dir": out_dir, "frozen": join_uri(out_dir, "frozen"), "shards": index,
            "stamps": stamps, **{k: result.get(k) for k in keep}}
