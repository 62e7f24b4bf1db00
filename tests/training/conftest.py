"""Synthetic injection data for training tests: host galaxies with and without an arc, as a
phase-4c stamps table (canonical blobs) and as shards."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dhs_gen.io.stamps import encode_stamp
from training.train import TrainConfig


def synth_pairs(n: int, size: int = 32, seed: int = 0, arc_amp: float = 0.08):
    """(positive, control, hard negative) float32 (n, 3, size, size) nanomaggie stamps and θ_E [px].

    Host: elliptical-ish Gaussian; noise σ = 0.01 nmgy; arc: a ring at θ_E (4-8 px), amplitude
    ``arc_amp``; hard negative: the same arc light scattered to random pixels of the annulus.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    r = np.hypot(yy, xx)
    sig = rng.uniform(1.5, 3.0, n)[:, None, None]
    amp = rng.uniform(0.2, 1.0, n)[:, None, None]
    host = amp * np.exp(-0.5 * (r[None] / sig) ** 2)
    colours = np.array([0.6, 1.0, 1.4])[None, :, None, None]
    control = host[:, None] * colours + rng.normal(0, 0.01, (n, 3, size, size))
    theta = rng.uniform(4, 8, n)
    ring = arc_amp * np.exp(-0.5 * ((r[None] - theta[:, None, None]) / 0.8) ** 2)
    arc = ring[:, None] * np.array([1.2, 1.0, 0.8])[None, :, None, None]
    positive = control + arc
    perm = np.argsort(rng.random((n, size * size)), axis=1)
    shuffled = np.take_along_axis(arc.reshape(n, 3, -1), perm[:, None, :], axis=2).reshape(arc.shape)
    hardneg = control + shuffled
    f32 = lambda a: a.astype(np.float32)  # noqa: E731
    return f32(positive), f32(control), f32(hardneg), theta.astype(np.float32)


def write_stamps_table(path, n: int, size: int = 32, seed: int = 0, splits=("train", "val"), arc_amp: float = 0.08):
    """A stamps-schema-like Parquet file with canonical blobs; split by hash of the row."""
    pos, ctrl, hard, theta = synth_pairs(n, size, seed, arc_amp)
    split_of = np.array(splits)[np.arange(n) % len(splits)]
    table = pa.table({
        "task_id": [f"t{seed}_{i:05d}" for i in range(n)],
        "host_id": [f"h{seed}_{i:05d}" for i in range(n)],
        "region_split": split_of.tolist(),
        "theta_e_arcsec": theta * 0.262,
        "psfsize_r": np.full(n, 1.2, np.float32),
        "psfdepth_r_mag5": np.full(n, 23.5, np.float32),
        "cutout_ok": np.ones(n, bool),
        "status": ["ok"] * n,
        "stamp": pa.array([encode_stamp(x) for x in pos], pa.binary()),
        "ctrl_stamp": pa.array([encode_stamp(x) for x in ctrl], pa.binary()),
        "hardneg_stamp": pa.array([encode_stamp(x) for x in hard], pa.binary()),
    })
    pq.write_table(table, path)
    return path


@pytest.fixture(scope="session")
def paired_shards(tmp_path_factory):
    """npy shards of 96 synthetic pairs (32x32), splits train/val alternating, 3 shards."""
    from training.data.shards import convert_to_shards

    root = tmp_path_factory.mktemp("paired")
    src = write_stamps_table(root / "stamps.parquet", 96)
    return convert_to_shards(str(src), str(root / "shards"), rows_per_shard=32)


def train_config(shards, out, **over) -> TrainConfig:
    """A tiny CPU training config (small_cnn, 3 epochs); ``section__key=value`` overrides."""
    data = {
        "data": {"shards": shards, "mode": "paired", "batch_size": 16, "num_workers": 0},
        "preprocess": {"norm": "outer_mad"},
        "augment": {"dihedral": True, "max_shift_px": 1},
        "model": {"name": "small_cnn"},
        "optim": {"epochs": 3, "lr": 3e-3, "warmup_epochs": 0.5},
        "run": {"out_dir": str(out), "seed": 3, "tensorboard": False, "early_stopping_patience": 0},
    }
    for key, value in over.items():
        section, name = key.split("__")
        data[section][name] = value
    return TrainConfig(**data)
