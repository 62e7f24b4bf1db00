"""Trainer and scorer efficiency: the project's own entry points beside the model alone, same
device, same process, same run (used by bench_training and by the device table, benchmarks.gpu).

* model alone, train: a resident batch, forward + backward + AdamW (the trainer's fused AdamW,
  memory format and autocast), no data, no augmentation, no preprocessing;
* trainer: ``training.train.Trainer.train_epoch`` on synthetic paired shards built by
  ``convert_to_shards`` (loader workers, augmentation, preprocessing, loss, clipping, scheduler);
* model alone, inference: a resident batch through the frozen model's network;
* scorer: ``Scorer.logits`` on a numpy array and ``Scorer.score_table`` on a table of canonical
  blobs (decode included), with a model exported by ``Trainer.export``;
* the Spark ``score`` job (``jobs.score``) under ``local[1]``: rows per CPU second of the whole
  process tree (driver, JVM, Python worker);
* DDP: ``torchrun --nproc_per_node=N -m training.train`` (gloo on CPU), images/s summed over the
  ranks, beside the same model alone on the whole machine.

Efficiency = the entry point's images/s ÷ the model alone's, measured alternately (best of
``rounds``) because a shared machine's load drifts.
"""
from __future__ import annotations

import copy
import os
import time
from pathlib import Path

import numpy as np

TRAIN_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "train.yaml"


def synthetic_pairs(n: int, size: int = 64, seed: int = 0) -> dict:
    """(n, 3, size, size) float32 nanomaggie stamps: ``stamp`` (host + ring arc), ``ctrl_stamp``
    (host), ``hardneg_stamp`` (host + the arc light moved off the ring); noise σ = 0.01 nmgy."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    r = np.hypot(yy, xx).astype(np.float32)
    sig = rng.uniform(1.5, 3.0, (n, 1, 1)).astype(np.float32)
    host = rng.uniform(0.2, 1.0, (n, 1, 1)).astype(np.float32) * np.exp(-0.5 * (r[None] / sig) ** 2)
    colours = np.array([0.6, 1.0, 1.4], np.float32)[None, :, None, None]
    ctrl = host[:, None] * colours + rng.normal(0, 0.01, (n, 3, size, size)).astype(np.float32)
    theta = rng.uniform(4, 8, (n, 1, 1)).astype(np.float32)
    ring = (0.08 * np.exp(-0.5 * ((r[None] - theta) / 0.8) ** 2))[:, None] * np.ones((1, 3, 1, 1), np.float32)
    off = (0.08 * np.exp(-0.5 * ((r[None] - theta - 6) / 0.8) ** 2))[:, None] * np.ones((1, 3, 1, 1), np.float32)
    return {"stamp": ctrl + ring, "ctrl_stamp": ctrl, "hardneg_stamp": ctrl + off, "theta_px": theta.ravel()}


def synthetic_shards(root: str, n_train: int, n_val: int = 16, size: int = 64, seed: int = 0) -> str:
    """A phase-4c-like stamps table of ``n_train`` + ``n_val`` pairs converted to npy shards with
    ``convert_to_shards``; returns the shard index path."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from dhs_gen.io.stamps import encode_stamp
    from training.data.shards import convert_to_shards

    n = n_train + n_val
    views = synthetic_pairs(n, size, seed)
    cols = {"task_id": [f"t{i:06d}" for i in range(n)], "host_id": [f"h{i:06d}" for i in range(n)],
            "region_split": ["train"] * n_train + ["val"] * n_val, "theta_e_arcsec": views["theta_px"] * 0.262}
    for v in ("stamp", "ctrl_stamp", "hardneg_stamp"):
        cols[v] = pa.array([encode_stamp(x) for x in views[v]], pa.binary())
    os.makedirs(root, exist_ok=True)
    src = os.path.join(root, "stamps.parquet")
    pq.write_table(pa.table(cols), src)
    return convert_to_shards(src, os.path.join(root, "shards"), rows_per_shard=4096)


def train_config(shards: str, out_dir: str, *, model: str, device: str, batch_size: int | None = None,
                 num_workers: int | None = None, sets: tuple = ()):
    """configs/train.yaml (augmentation and preprocessing as shipped) pointed at ``shards``; batch
    size and loader workers from the file unless given; ``sets``: more ``key=value`` overrides."""
    from dhs_gen.config import load_config
    from training.train import TrainConfig

    extra = list(sets)
    sets = [f"data.shards={shards}", f"run.out_dir={out_dir}", f"model.name={model}", f"run.device={device}",
            "run.tensorboard=false", "optim.epochs=1000", "optim.warmup_epochs=0"]
    if batch_size is not None:
        sets.append(f"data.batch_size={batch_size}")
    if num_workers is not None:
        sets.append(f"data.num_workers={num_workers}")
    return load_config(TrainConfig, str(TRAIN_CONFIG), [*sets, *extra])


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed_steps(fn, n: int, device) -> float:
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    _sync(device)
    return time.perf_counter() - t0


def trainer_vs_model(cfg, rounds: int = 2) -> tuple[dict, object]:
    """Trainer images/s (``train_epoch``: a whole epoch, every step through the loader, a new
    epoch each round; size the training split to the steps wanted) and the model alone's (a copy
    of the trainer's model, as many steps on a resident batch); alternating, best of ``rounds``
    each, after one untimed epoch / as many untimed steps. Returns (rates, the open Trainer)."""
    import torch

    from training.memory_format import train_step_fn
    from training.train import Trainer

    trainer = Trainer(cfg)
    try:
        dev, bs = trainer.device, cfg.data.batch_size
        steps = len(trainer.train_loader.sampler)
        c = trainer.store.shape[0] * cfg.preprocess.out_chans_factor
        gen = torch.Generator().manual_seed(1)
        x = torch.randn((bs, c, *trainer.store.shape[1:]), generator=gen).to(dev)
        x = x.contiguous(memory_format=trainer.memory_format)
        y = (torch.rand(bs, generator=gen) < 0.5).float().to(dev)
        step = train_step_fn(copy.deepcopy(trainer.model).train(), x, y, trainer.amp)
        trainer.train_epoch(0)
        _timed_steps(step, steps, dev)
        best_trainer = best_model = 0.0
        for k in range(rounds):
            best_model = max(best_model, bs * steps / _timed_steps(step, steps, dev))
            best_trainer = max(best_trainer, trainer.train_epoch(k + 1)["train_images_per_s"])
        return ({"trainer": best_trainer, "model": best_model, "efficiency": best_trainer / best_model,
                 "batch": bs, "steps": steps, "channels_last": trainer.memory_format == torch.channels_last,
                 "amp": str(trainer.amp), "num_workers": cfg.data.num_workers, "device": str(dev)}, trainer)
    except BaseException:
        trainer.close()
        raise


def ddp_trainer_rate(cfg, nproc: int, epochs: int = 3) -> float:
    """Trainer images/s summed over ``nproc`` torchrun ranks (the cores split evenly among them):
    the best epoch after the first (``metrics.jsonl``), the same config otherwise."""
    import json
    import subprocess
    import sys
    import tempfile

    import yaml

    data = json.loads(cfg.model_dump_json())
    with tempfile.TemporaryDirectory(prefix="dhs-bench-ddp-") as tmp:
        data["run"].update(out_dir=os.path.join(tmp, "run"), export=False, early_stopping_patience=0)
        data["optim"]["epochs"] = epochs
        path = os.path.join(tmp, "train.yaml")
        with open(path, "w", encoding="utf-8") as fh:
            yaml.safe_dump(data, fh)
        threads = str(max(1, (os.cpu_count() or 1) // nproc))
        env = {**os.environ, "OMP_NUM_THREADS": threads, "DHS_NO_PROGRESS": "1"}
        proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                               f"--nproc_per_node={nproc}", "-m", "training.train", "--config", path],
                              capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            raise RuntimeError(f"DDP bench run failed: {proc.stderr[-2000:]}")
        with open(os.path.join(tmp, "run", "metrics.jsonl"), encoding="utf-8") as fh:
            rows = [json.loads(line) for line in fh if line.strip()]
    return max(r["train_images_per_s"] for r in rows[1:] or rows)


def canonical_table(images: np.ndarray):
    """A scores-input table: ``id`` and canonical ``stamp`` blobs."""
    import pyarrow as pa

    from dhs_gen.io.stamps import encode_stamp

    return pa.table({"id": [f"s{i:07d}" for i in range(len(images))],
                     "stamp": pa.array([encode_stamp(x) for x in images], pa.binary())})


def scorer_vs_model(frozen_dir: str, images: np.ndarray, device: str, batch_size: int, rounds: int = 2) -> dict:
    """Images/s of the frozen model's network alone (resident batch, inference mode; also per CPU
    second of this process, ``model_per_cpu_s``), of
    ``Scorer.logits`` (numpy in, logits out) and of ``Scorer.score_table`` (canonical blobs in:
    decode, preprocessing, inference, calibration, the scores table out); best of ``rounds``."""
    import torch

    from training.eval.scoring import load_scorer

    scorer = load_scorer([frozen_dir], temperature=1.0, device=device, batch_size=batch_size)
    member = scorer.members[0]
    dev = torch.device(device)
    net = member.model
    x = member.preprocess(torch.from_numpy(images[:batch_size]).to(dev))
    table = canonical_table(images)

    def alone():
        with torch.inference_mode():
            net(x)

    n = len(images)
    reps = max(1, n // len(x))
    best = {"model": 0.0, "model_per_cpu_s": 0.0, "logits": 0.0, "score_table": 0.0}
    alone()
    scorer.logits(images[:batch_size])
    for _ in range(rounds):
        cpu0 = time.process_time()  # all of this process's threads
        best["model"] = max(best["model"], len(x) * reps / _timed_steps(alone, reps, dev))
        best["model_per_cpu_s"] = max(best["model_per_cpu_s"], len(x) * reps / (time.process_time() - cpu0))
        t0 = time.perf_counter()
        scorer.logits(images)
        best["logits"] = max(best["logits"], n / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        out = scorer.score_table(table, batch_size=batch_size)
        best["score_table"] = max(best["score_table"], n / (time.perf_counter() - t0))
        assert out.num_rows == n and set(out.column("status").to_pylist()) == {"ok"}
    return {**best, "efficiency": best["score_table"] / best["model"],
            "logits_efficiency": best["logits"] / best["model"], "batch": batch_size}


def spark_score_rate(frozen_dir: str, images: np.ndarray, root: str, batch_size: int) -> dict:
    """Rows per CPU second (whole process tree) and per wall second of the ``score`` job's body
    under ``local[1]`` in a warm session (one untimed pass first: JVM, Python worker, model load)."""
    import sys
    from argparse import Namespace

    import pyarrow.parquet as pq

    from benchmarks.bench_phase4c import _tree_cpu_seconds
    from dhs_gen.spark import build_spark_session
    from jobs.score import ScoreConfig, _body

    src = os.path.join(root, "score_input.parquet")
    pq.write_table(canonical_table(images), src, row_group_size=1024)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = build_spark_session("dhs-bench-score", master="local[1]")
    try:
        def timed(name: str) -> tuple:
            cfg = ScoreConfig(input=src, output=os.path.join(root, name), models=[frozen_dir], temperature=1.0,
                              batch_size=batch_size, exclude_trained=False, top_k=0, gallery=0)
            cpu0, t0 = _tree_cpu_seconds(os.getpid()), time.perf_counter()
            rows = _body(spark, cfg, Namespace())["rows_out"]
            wall, cpu1 = time.perf_counter() - t0, _tree_cpu_seconds(os.getpid())
            return rows, wall, (cpu1 - cpu0 if cpu0 is not None else None)

        timed("warm")
        rows, wall, cpu = timed("timed")
        return {"rows_per_wall_s": rows / wall, "rows_per_cpu_s": rows / cpu if cpu else None}
    finally:
        spark.stop()
