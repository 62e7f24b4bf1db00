"""Training benchmarks on the present device (cuda when available, else this CPU), each value
beside a baseline measured in the same run.

* ``loader_<layout>_64``: random batches of 256 (3, 64, 64) stamps gathered from shards and
  collated into a torch tensor by one process (stamps/s/core); baseline: the earlier pipeline's
  per-sample decode of compressed-npz ``stamp_npz`` blobs and ``np.stack``. Target >= 20,000.
* ``preprocess_outer_mad_6ch_64``: batched torch median/MAD normalisation + 6-channel residual
  (stamps/s on this CPU); baseline: the same per stamp in numpy/scipy.
* ``train_resnet18_64`` / ``infer_resnet18_64``: channels_last images/s; baseline NCHW; at the
  trainer's batch size (configs/train.yaml), after warm-up, best of alternating rounds. The
  training side is recorded for ``run.channels_last: auto`` (training.memory_format).
* ``trainer_efficiency_resnet18_64``: Trainer images/s beside the model alone (ratio = trainer
  efficiency; goal >= 0.8 on CPU, >= 0.7 on GPU); ``scorer_efficiency_resnet18_64`` /
  ``scorer_logits_resnet18_64``: the scorer beside the model's inference (goal >= 0.5);
  ``score_job_rows_per_cpu_s``: the Spark score job per core beside the model per core
  (benchmarks.efficiency). ``--quick``: small batches and few steps (a smoke run).
"""
from __future__ import annotations

import os
import tempfile
import time

import numpy as np

from benchmarks.timing import best_time, entry

STAMP_SHAPE = (3, 64, 64)
LOADER_BATCH = 256
TRAIN_CONFIG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs", "train.yaml")
BENCH_DIR = "build/bench"


def _stamps(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(0.0, 0.01, (n, *STAMP_SHAPE)).astype(np.float32)


def _loader_rate(index_path: str, n_batches: int, seed: int = 0) -> float:
    """Stamps/s for random batches through the training dataset (read + collate), one process."""
    from training.data.loader import StampBatchDataset
    from training.data.store import ShardStore

    store = ShardStore(index_path)
    ds = StampBatchDataset(store, paired=False)
    rng = np.random.default_rng(seed)
    # random rows, sorted within the batch as the training samplers send them
    requests = [(np.sort(rng.choice(store.n_rows, LOADER_BATCH, replace=False)), np.zeros(LOADER_BATCH, np.int8))
                for _ in range(n_batches)]
    for start in range(0, store.n_rows, LOADER_BATCH):  # one warm pass: steady-state (epoch >= 2) reads
        rows = np.arange(start, min(start + LOADER_BATCH, store.n_rows))
        ds[(rows, np.zeros(len(rows), np.int8))]
    t0 = time.perf_counter()
    for req in requests:
        batch = ds[req]
    dt = time.perf_counter() - t0
    assert batch["image"].shape == (LOADER_BATCH, *STAMP_SHAPE)
    return n_batches * LOADER_BATCH / dt


def _npz_baseline_rate(images: np.ndarray) -> float:
    """Stamps/s of per-sample compressed-npz decode + stack (the legacy loader's inner loop)."""
    from dhs_gen.io.stamps import decode_stamp_npz, encode_stamp_npz

    blobs = [encode_stamp_npz(x) for x in images]
    t = best_time(lambda: np.stack([decode_stamp_npz(b).image for b in blobs]), repeats=2)
    return len(blobs) / t


def bench_loader(quick: bool) -> list[dict]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from dhs_gen.io.stamps import encode_stamp
    from training.data.shards import LAYOUTS, convert_to_shards

    n = 1024 if quick else 4096
    images = _stamps(n)
    baseline = _npz_baseline_rate(images[: 64 if quick else 512])
    out = []
    with tempfile.TemporaryDirectory(prefix="dhs-bench-") as tmp:
        src = os.path.join(tmp, "stamps.parquet")
        pq.write_table(pa.table({"task_id": [f"t{i}" for i in range(n)], "region_split": ["train"] * n,
                                 "stamp": pa.array([encode_stamp(x) for x in images], pa.binary())}), src)
        for layout in LAYOUTS:
            index = convert_to_shards(src, os.path.join(tmp, layout), layout=layout, rows_per_shard=2048)
            rate = _loader_rate(index, 4 if quick else 32)
            out.append(entry(f"loader_{layout}_64", rate, "stamps/s/core", "per-sample npz decode + stack",
                             baseline, target=">= 20000",
                             notes=f"random batches of {LOADER_BATCH} from {n} float32 3x64x64 stamps, one process"))
    return out


def _numpy_preprocess_6ch(batch: np.ndarray, r_in: float, clip: float, sigma: float) -> np.ndarray:
    """Per-stamp numpy/scipy: outer median/MAD normalisation and the 6-channel residual."""
    from scipy.ndimage import gaussian_filter

    h, w = batch.shape[-2:]
    yy, xx = np.mgrid[:h, :w]
    outer = np.hypot(yy - (h - 1) / 2, xx - (w - 1) / 2) >= r_in
    out = np.empty((len(batch), 2 * batch.shape[1], h, w), np.float32)
    for i, img in enumerate(batch):
        v = img[:, outer]
        med = np.median(v, axis=1)[:, None, None]
        mad = np.median(np.abs(v - med[:, :, 0]), axis=1)[:, None, None]
        z = np.clip((img - med) / (1.4826 * mad), -clip, clip)
        blur = gaussian_filter(z, sigma=(0, sigma, sigma), mode="mirror", truncate=3.0)
        out[i] = np.concatenate([z, np.clip(z - blur, -clip, clip)])
    return out


def bench_preprocess(quick: bool) -> list[dict]:
    import torch

    from training.preprocess import Preprocess

    batch = _stamps(128 if quick else 1024, seed=1)
    pre = Preprocess({"norm": "outer_mad", "six_channel": True})
    x = torch.from_numpy(batch)
    with torch.inference_mode():
        t = best_time(lambda: pre(x), repeats=2 if quick else 3)
    nb = batch[:32] if quick else batch[:256]
    tb = best_time(lambda: _numpy_preprocess_6ch(nb, 16.0, 10.0, 3.0), repeats=2)
    return [entry("preprocess_outer_mad_6ch_64", len(batch) / t, "stamps/s",
                  "per-stamp numpy median/MAD + scipy residual", len(nb) / tb,
                  notes=f"torch CPU, {torch.get_num_threads()} threads, batch {len(batch)}; "
                        "on a GPU the same ops run on the device")]


def _train_yaml_batch() -> int:
    import yaml

    with open(TRAIN_CONFIG) as f:
        return int(yaml.safe_load(f)["data"]["batch_size"])


def _infer_rates(device, batch: int, rounds: int) -> dict:
    """Inference images/s of resnet18 in each memory format (resident batch, 2 warm-up calls)."""
    import torch

    from training.memory_format import FORMATS
    from training.models import build_model

    x0 = torch.randn((batch, *STAMP_SHAPE), generator=torch.Generator().manual_seed(0)).to(device)
    best = dict.fromkeys(FORMATS, 0.0)
    for _ in range(rounds):
        for name, fmt in FORMATS.items():
            net = build_model("resnet18").to(device=device, memory_format=fmt).eval()
            x = x0.contiguous(memory_format=fmt)
            with torch.inference_mode():
                t = best_time(lambda net=net, x=x: net(x), repeats=2, warmup=2)
            best[name] = max(best[name], batch / t)
    return best


def bench_memory_format(quick: bool, device) -> list[dict]:
    """channels_last vs NCHW for resnet18 at the trainer's batch size (configs/train.yaml), after
    warm-up; the training side is the trainer's own start-up measurement (training.memory_format)
    and is recorded in build/bench/train_memory_format.yaml (copy it to configs/ to make it the
    ``run.channels_last: auto`` choice for this kind of device)."""
    import torch

    from dhs_gen.storage import write_text
    from training.memory_format import device_key, measure
    from training.models import build_model

    batch = 8 if quick else _train_yaml_batch()
    amp = torch.bfloat16 if device.type == "cuda" else None
    model = build_model("resnet18")
    train = measure(model, device, STAMP_SHAPE, batch, amp, steps=1 if quick else 2, warmup=1,
                    rounds=1 if quick else 2)
    infer = _infer_rates(device, batch, rounds=1 if quick else 2)
    key = device_key(device)
    if not quick:
        import yaml

        record = {"devices": {key: {"channels_last": bool(train["channels_last"] > train["contiguous"]),
                                    "images_per_s": {k: round(v, 1) for k, v in train.items()},
                                    "model": "resnet18", "input": list(STAMP_SHAPE), "batch": batch,
                                    "amp": str(amp), "measured_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                                    time.gmtime())}}}
        write_text(os.path.join(BENCH_DIR, "train_memory_format.yaml"),
                   "# written by benchmarks/bench_training.py (bench_memory_format); see training/memory_format.py\n"
                   + yaml.safe_dump(record, sort_keys=True))
    note = (f"{key}, {torch.get_num_threads()} threads, batch {batch} (configs/train.yaml), amp {amp}; "
            "warm-up first, best of alternating rounds; value: channels_last")
    return [entry("train_resnet18_64", train["channels_last"], "images/s", "resnet18 NCHW", train["contiguous"],
                  notes=note + "; forward+backward+AdamW (fused)"),
            entry("infer_resnet18_64", infer["channels_last"], "images/s", "resnet18 NCHW", infer["contiguous"],
                  notes=note)]


def bench_efficiency(quick: bool, device) -> list[dict]:
    """Trainer and scorer efficiency (benchmarks.efficiency) for resnet18 64x64, paired mode,
    augmentation and preprocessing as in configs/train.yaml, and the Spark score job per core."""
    import torch

    from benchmarks.efficiency import (
        ddp_trainer_rate,
        scorer_vs_model,
        spark_score_rate,
        synthetic_pairs,
        synthetic_shards,
        train_config,
        trainer_vs_model,
    )
    from training.memory_format import device_key

    batch = 16 if quick else _train_yaml_batch()
    steps = 2 if device.type == "cpu" else 24  # per epoch: an epoch of the trainer and as many model steps a round
    workers = min(8, os.cpu_count() or 1)  # configs/train.yaml's 8, or one per core where fewer
    with tempfile.TemporaryDirectory(prefix="dhs-bench-eff-") as tmp:
        shards = synthetic_shards(os.path.join(tmp, "data"), n_train=steps * batch // 2)
        cfg = train_config(shards, os.path.join(tmp, "run"), model="resnet18", device=device.type,
                           batch_size=batch, num_workers=workers)
        tr, trainer = trainer_vs_model(cfg, rounds=2)
        try:
            trainer.export()
        finally:
            trainer.close()
        ddp = ddp_trainer_rate(cfg, nproc=2, epochs=2 if quick else 3) if device.type == "cpu" else None
        frozen = os.path.join(tmp, "run", "frozen")
        images = synthetic_pairs(64 if quick else 1024, seed=3)["stamp"]
        sc = scorer_vs_model(frozen, images, device.type, batch_size=256 if device.type == "cpu" else 2048,
                             rounds=2)
        spark = spark_score_rate(frozen, images, tmp, batch_size=256)
    threads = torch.get_num_threads()
    where = f"{device_key(device)}, {threads} threads"
    rows = [
        entry("trainer_efficiency_resnet18_64", tr["trainer"], "images/s", "resnet18 alone: fwd+bwd+AdamW",
              tr["model"], target=">= 0.8 (CPU), >= 0.7 (GPU)",
              notes=f"{where}; Trainer.train_epoch, paired, configs/train.yaml augment+preprocess, batch "
                    f"{tr['batch']}, {tr['num_workers']} loader workers, channels_last={tr['channels_last']}, "
                    f"amp {tr['amp']}; best of 2 alternating rounds of {steps} steps; ratio = efficiency"),
        entry("scorer_efficiency_resnet18_64", sc["score_table"], "images/s", "resnet18 alone: inference",
              sc["model"], target=">= 0.5",
              notes=f"{where}; Scorer.score_table on canonical blobs (decode + preprocess + inference + "
                    f"calibration), batch {sc['batch']}, frozen model from Trainer.export; ratio = efficiency"),
        entry("scorer_logits_resnet18_64", sc["logits"], "images/s", "resnet18 alone: inference", sc["model"],
              notes=f"{where}; Scorer.logits on a float32 numpy array (preprocess + inference)"),
    ]
    if ddp is not None:
        rows.append(entry("ddp2_trainer_efficiency_resnet18_64", ddp, "images/s",
                          "resnet18 alone: fwd+bwd+AdamW, whole machine", tr["model"], target=">= 0.8 (CPU)",
                          notes=f"torchrun --nproc_per_node=2 -m training.train, gloo, {max(1, threads // 2)} "
                                f"thread(s) per rank, the trainer config above; images/s summed over both ranks, "
                                f"best epoch after the first; ratio = DDP efficiency"))
    if spark["rows_per_cpu_s"]:
        rows.append(entry("score_job_rows_per_cpu_s", spark["rows_per_cpu_s"], "rows/s/core",
                          "resnet18 alone: inference per CPU second", sc["model_per_cpu_s"],
                          notes=f"jobs.score body under Spark local[1], warm session, {len(images)} canonical "
                                f"blobs; CPU seconds of driver + JVM + Python worker; "
                                f"{spark['rows_per_wall_s']:.1f} rows per wall second"))
    return rows


def run(quick: bool = False) -> list[dict]:
    """All training benchmarks (see module docstring) on the present device (cuda when available)."""
    import torch

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return [*bench_loader(quick), *bench_preprocess(quick), *bench_memory_format(quick, device),
            *bench_efficiency(quick, device)]
