"""Training benchmarks: loader read+decode+collate per shard layout, batched preprocessing, and
resnet18 64x64 train/inference throughput, each beside a baseline measured in the same run.

* ``loader_<layout>_64``: random batches of 256 (3, 64, 64) stamps gathered from shards and
  collated into a torch tensor by one process (stamps/s/core); baseline: the earlier pipeline's
  per-sample decode of compressed-npz ``stamp_npz`` blobs and ``np.stack``. Target >= 20,000.
* ``preprocess_outer_mad_6ch_64``: batched torch median/MAD normalisation + 6-channel residual
  (stamps/s on this CPU); baseline: the same per stamp in numpy/scipy.
* ``train_resnet18_64`` / ``infer_resnet18_64``: images/s on this CPU (float32, channels_last,
  the trainer's setting); baseline: the default NCHW memory format. On a GPU the trainer adds bf16.
"""
from __future__ import annotations

import os
import tempfile
import time

import numpy as np

from benchmarks.timing import best_time, entry

STAMP_SHAPE = (3, 64, 64)
LOADER_BATCH = 256


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


def _model_rates(model, fmt, x, y, steps: int) -> tuple[float, float]:
    """(train, inference) images/s of ``model`` in memory format ``fmt``."""
    import torch

    model = model.to(memory_format=fmt)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    xf = x.contiguous(memory_format=fmt)

    def train_step():
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(xf), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    model.train()
    t_train = best_time(lambda: [train_step() for _ in range(steps)], repeats=1)
    model.eval()
    with torch.inference_mode():
        t_inf = best_time(lambda: [model(xf) for _ in range(steps)], repeats=1)
    return len(x) * steps / t_train, len(x) * steps / t_inf


def bench_model(quick: bool) -> list[dict]:
    import torch

    from training.models import build_model

    torch.manual_seed(0)
    bs = 16 if quick else 32
    steps = 1 if quick else 2
    x = torch.randn(bs, 3, 64, 64)
    y = torch.randint(0, 2, (bs,)).float()
    rates: dict = {}
    for _ in range(1 if quick else 2):  # alternate formats: the machine's load drifts
        for fmt in (torch.contiguous_format, torch.channels_last):
            r = _model_rates(build_model("resnet18"), fmt, x, y, steps)
            old = rates.get(fmt, (0.0, 0.0))
            rates[fmt] = (max(old[0], r[0]), max(old[1], r[1]))
    cl, nchw = rates[torch.channels_last], rates[torch.contiguous_format]
    note = f"CPU, {torch.get_num_threads()} threads, float32, batch {bs}; best of alternating runs"
    return [entry("train_resnet18_64", cl[0], "images/s", "resnet18 NCHW (default format)", nchw[0],
                  notes=note + "; value: channels_last (the GPU setting)"),
            entry("infer_resnet18_64", cl[1], "images/s", "resnet18 NCHW (default format)", nchw[1],
                  notes=note + "; value: channels_last (the GPU setting)")]


def run(quick: bool = False) -> list[dict]:
    """All training benchmarks (see module docstring)."""
    return [*bench_loader(quick), *bench_preprocess(quick), *bench_model(quick)]
