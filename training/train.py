"""Train a lens finder: ``torchrun --standalone --nproc_per_node=N -m training.train --config C``.

Also ``dhs train --config C`` (one process) and ``python -m training.train``. DDP uses nccl on
GPU and gloo on CPU. The loader only reads raw float32 stamps; augmentation and preprocessing run
batched on the training device. Per epoch, rank 0 writes ``metrics.csv``, ``metrics.jsonl`` and
TensorBoard scalars (train loss, val loss, val AUC, precision@recall 0.9, recall@precision 0.9,
ECE, all on predictions gathered from every rank), and atomically ``last.pt`` and (by val AUC)
``best.pt``. ``--resume`` continues from ``last.pt`` exactly (model, optimizer, scheduler,
scaler, epoch, early-stopping state, RNG). A non-finite loss stops every rank and writes the
offending batch's ids to ``nonfinite_batch.json`` (exit code 3); the check is deferred
(``run.nonfinite_check_every`` steps and every epoch end) so the loop never waits on the device.
Rank 0 holds ``<out_dir>/.run.lock`` for the run (training.run_lock: one writer per out_dir);
workers started by torchrun exit when their launcher dies. The memory format is measured, not
assumed (``run.channels_last: auto``, training.memory_format). At the end the best model is
exported as a frozen model (``<out_dir>/frozen``, see training.export).
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import random
import sys
import time
from typing import Dict, List, Literal, Optional, Union

import numpy as np
from pydantic import Field

from dhs_gen.config import StrictModel
from dhs_gen.entrypoint import plain_text
from dhs_gen.log import get_logger, progress, setup_logging
from training.augment import AugmentSpec
from training.models import InitMode, ModelName
from training.preprocess import PreprocessSpec

log = get_logger(__name__)
EXIT_NONFINITE = 3
LAUNCHER_ENV = "TORCHELASTIC_RUN_ID"  # set by torchrun in every worker it starts


class DataConfig(StrictModel):
    shards: str = Field(..., description="shard index.json (or its folder) from convert_to_shards")
    mode: Literal["paired", "plain"] = Field(
        "paired", description="paired (injections with controls) | plain (labelled rows)")
    batch_size: int = Field(256, ge=2, description="images per batch per rank (paired: 2 x pairs)")
    num_workers: int = Field(4, ge=0)
    train_split: str = "train"
    val_split: str = "val"
    meta_columns: List[str] = Field(default_factory=list, description="metadata inputs (hybrid model)")
    tier_weights: Dict[str, float] = Field(default_factory=dict, description="loss weight factor per tier")
    hard_neg_start: float = Field(0.5, ge=0, le=1)
    hard_neg_end: float = Field(0.2, ge=0, le=1)
    hard_neg_anneal_epochs: int = Field(10, ge=0)


class ModelConfig(StrictModel):
    name: ModelName = "resnet18"
    pretrained_path: Optional[str] = None  # noqa: UP045 (pydantic on py3.9)
    init: InitMode = "copy_or_zero"
    theta_head: bool = False
    theta_loss_weight: float = Field(0.1, ge=0)
    meta_hidden: int = 32


class OptimConfig(StrictModel):
    epochs: int = Field(20, ge=1)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    warmup_epochs: float = Field(1.0, ge=0)
    min_lr_frac: float = Field(0.01, ge=0, le=1)
    grad_clip: float = Field(1.0, ge=0, description="max grad norm; 0 disables")
    loss: Literal["bce", "focal"] = "bce"
    focal_alpha: float = 0.25
    focal_gamma: float = 2.0


class RunConfig(StrictModel):
    out_dir: str
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: cuda when available, else cpu")
    amp: Literal["auto", "bf16", "fp16", "off"] = Field("auto", description="auto: bf16 on GPU, off on CPU")
    channels_last: Union[Literal["auto"], bool] = Field(  # noqa: UP007 (pydantic on py3.9)
        "auto", description="memory format; auto: the measured faster one for this device "
                            "(configs/train_memory_format.yaml, else measured at start-up)")
    nonfinite_check_every: int = Field(
        16, ge=1, description="steps between host checks of the loss (and at every epoch end); a "
                              "NaN/Inf stops the run with the first bad step's batch ids")
    early_stopping_patience: int = Field(5, ge=0, description="epochs without val AUC gain; 0 disables")
    export: bool = True
    tensorboard: bool = True


class TrainConfig(StrictModel):
    data: DataConfig
    preprocess: PreprocessSpec = Field(default_factory=PreprocessSpec)
    augment: AugmentSpec = Field(default_factory=AugmentSpec)
    model: ModelConfig = Field(default_factory=ModelConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    run: RunConfig


class NonFiniteLoss(RuntimeError):
    """The loss went NaN/Inf; ``ids`` are the rows of the offending batch (all ranks)."""

    def __init__(self, epoch: int, step: int, ids: list):
        super().__init__(f"non-finite loss at epoch {epoch} step {step}; batch ids (first 10): {ids[:10]}")
        self.epoch, self.step, self.ids = epoch, step, ids


# --------------------------------------------------------------------------------------------
# distributed helpers

class Dist:
    """Rank/world/device of this process; initialises torch.distributed under torchrun."""

    def __init__(self, device_pref: str):
        import torch
        import torch.distributed as dist

        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", "0"))
        use_cuda = torch.cuda.is_available() if device_pref == "auto" else device_pref == "cuda"
        if use_cuda and not torch.cuda.is_available():
            raise RuntimeError("run.device=cuda but no CUDA device is available")
        if use_cuda:
            torch.cuda.set_device(local)
            self.device = torch.device("cuda", local)
        else:
            self.device = torch.device("cpu")
        self.enabled = self.world > 1
        if self.enabled and not dist.is_initialized():
            dist.init_process_group("nccl" if use_cuda else "gloo")

    @property
    def main(self) -> bool:
        return self.rank == 0

    def all_gather(self, obj):
        import torch.distributed as dist

        if not self.enabled:
            return [obj]
        out = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def any(self, flag: bool) -> bool:
        import torch
        import torch.distributed as dist

        if not self.enabled:
            return flag
        t = torch.tensor([1.0 if flag else 0.0], device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item() > 0)

    def broadcast(self, obj):
        import torch.distributed as dist

        if not self.enabled:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def close(self) -> None:
        import torch.distributed as dist

        if self.enabled and dist.is_initialized():
            dist.destroy_process_group()


# --------------------------------------------------------------------------------------------
# pieces

def lr_lambda(total_steps: int, warmup_steps: int, min_frac: float):
    """Linear warmup to 1, then cosine to ``min_frac`` at ``total_steps``."""
    def f(step: int) -> float:
        if warmup_steps and step < warmup_steps:
            return (step + 1) / warmup_steps
        t = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return min_frac + (1 - min_frac) * 0.5 * (1 + math.cos(math.pi * t))
    return f


def amp_dtype(setting: str, device):
    import torch

    if setting == "auto":
        return torch.bfloat16 if device.type == "cuda" else None
    return {"bf16": torch.bfloat16, "fp16": torch.float16, "off": None}[setting]


def rng_state() -> dict:
    """Global torch (CPU, CUDA) and Python RNG states; project code draws numpy numbers only from
    explicitly seeded Generators, so there is no global numpy state to keep."""
    import torch

    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    import torch

    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str, payload: dict) -> None:
    """torch.save to bytes, then an atomic write."""
    import torch

    from dhs_gen.storage import write_bytes

    buf = io.BytesIO()
    torch.save(payload, buf)
    write_bytes(path, buf.getvalue())


def load_checkpoint(path: str) -> dict:
    import torch

    from dhs_gen.storage import read_bytes

    return torch.load(io.BytesIO(read_bytes(path)), map_location="cpu", weights_only=True)


def val_metrics(y: np.ndarray, logits: np.ndarray, w: np.ndarray) -> dict:
    """Validation metrics from dhs_gen.stats.metrics (NaN where undefined, e.g. one class)."""
    from dhs_gen.stats import metrics as M

    p = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
    eps = 1e-7
    loss = -(w * (y * np.log(p + eps) + (1 - y) * np.log(1 - p + eps))).sum() / max(w.sum(), 1e-12)
    out = {"val_loss": float(loss), "val_n": int(len(y))}
    for key, fn in (("val_auc", lambda: M.roc_auc(y, logits)),
                    ("val_precision_at_recall90", lambda: M.precision_at_recall(y, logits, recall=0.9)),
                    ("val_recall_at_precision90", lambda: M.recall_at_precision(y, logits, precision=0.9)),
                    ("val_ece", lambda: M.expected_calibration_error(y, p, n_bins=15))):
        try:
            out[key] = float(fn())
        except ValueError:
            out[key] = float("nan")
    return out


class MetricsWriter:
    """metrics.csv + metrics.jsonl (+ TensorBoard) on rank 0."""

    def __init__(self, out_dir: str, tensorboard: bool, resume: bool):
        self.csv = os.path.join(out_dir, "metrics.csv")
        self.jsonl = os.path.join(out_dir, "metrics.jsonl")
        if not resume:
            for p in (self.csv, self.jsonl):
                if os.path.exists(p):
                    os.remove(p)
        self.tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(os.path.join(out_dir, "tensorboard"))
            except ImportError:
                log.warning("tensorboard is not installed; writing CSV/JSONL only")

    def write(self, row: dict) -> None:
        with open(self.jsonl, "a") as f:
            f.write(json.dumps(row) + "\n")
        new = not os.path.exists(self.csv)
        with open(self.csv, "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(row))
            if new:
                writer.writeheader()
            writer.writerow(row)
        if self.tb is not None:
            for k, v in row.items():
                if isinstance(v, (int, float)) and k != "epoch" and math.isfinite(v):
                    self.tb.add_scalar(k, v, row["epoch"])
            self.tb.flush()

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


# --------------------------------------------------------------------------------------------
# the loop

def resolve_preprocess(cfg: TrainConfig, store) -> PreprocessSpec:
    """The run's preprocessing recipe: the configured one plus the metadata columns and, unless
    given, their mean/std over the training rows (a new spec; the config is not changed)."""
    spec, columns = cfg.preprocess, list(cfg.data.meta_columns)
    if not columns:
        return spec
    update: dict = {"meta_columns": columns}
    if not spec.meta_mean:
        train_rows = np.flatnonzero(store.column("split") == cfg.data.train_split)
        meta = np.stack([store.column(c).astype(np.float64)[train_rows] for c in columns], axis=1)
        update.update(meta_mean=np.nanmean(meta, axis=0).tolist(), meta_std=np.nanstd(meta, axis=0).tolist())
    return spec.model_copy(update=update)


class NonFiniteWatch:
    """Deferred non-finite loss check: per-step flags stay on the device and are read every
    ``every`` steps (and at epoch end) in one transfer, so the loop never waits on the device for
    it. On a bad step every rank stops; the first bad step's batch ids (all ranks) are reported."""

    def __init__(self, every: int, dist: Dist):
        self.every, self.dist = int(every), dist
        self.flags: list = []
        self.rows: list = []

    def add(self, step: int, loss, rows) -> None:
        import torch

        self.flags.append(~torch.isfinite(loss.detach()))
        self.rows.append((step, rows))

    def due(self) -> bool:
        return len(self.flags) >= self.every

    def check(self, epoch: int, ids_of) -> None:
        """Raise NonFiniteLoss if any pending step was non-finite on any rank; clears the window."""
        import torch

        if not self.flags and not self.dist.enabled:
            return
        bad = torch.stack(self.flags).cpu().numpy() if self.flags else np.zeros(0, bool)
        first = int(np.argmax(bad)) if bad.any() else None
        pending, self.flags, self.rows = self.rows, [], []
        if not self.dist.any(first is not None):
            return
        mine = (pending[first][0], ids_of(pending[first][1])) if first is not None else (None, [])
        found = [m for m in self.dist.all_gather(mine) if m[0] is not None]
        step = min(st for st, _ in found)
        raise NonFiniteLoss(epoch, step, sorted(sum((ids for st, ids in found if st == step), [])))


class Trainer:
    """One training run (one process of a DDP group). The config is read, never changed; the
    resolved recipe (metadata standardisation) lives in ``self.cfg``."""

    def __init__(self, cfg: TrainConfig, resume: bool = False):
        from dhs_gen.config import config_to_dict
        from training.data.store import ShardStore

        self.resume = resume
        self.dist = Dist(cfg.run.device)
        self.device = self.dist.device
        self.out_dir = os.path.abspath(cfg.run.out_dir)
        os.makedirs(self.out_dir, exist_ok=True)
        self.lock = _run_lock(self.out_dir) if self.dist.main else None
        try:
            self._seed(cfg.run.seed)
            self.store = ShardStore(cfg.data.shards)
            self.cfg = cfg.model_copy(update={"preprocess": resolve_preprocess(cfg, self.store)})
            self.config_dict = config_to_dict(self.cfg)
            self.train_rows = np.flatnonzero(self.store.column("split") == cfg.data.train_split)
            checkpoint = self._resume_checkpoint() if resume else None
            self._build_loaders()
            self._build_transforms()
            self._build_model(checkpoint)
            self._build_optimizer()
            self.start_epoch, self.best_auc, self.best_epoch, self.bad_epochs = 0, -math.inf, -1, 0
            if checkpoint is not None:
                self._restore(checkpoint)
            self.writer = MetricsWriter(self.out_dir, cfg.run.tensorboard, resume) if self.dist.main else None
            if self.dist.main:
                from dhs_gen.config import save_resolved_config

                save_resolved_config(self.cfg, self.out_dir)
        except BaseException:
            if self.lock is not None:
                self.lock.release()
            raise

    # -- construction, one seam each
    @staticmethod
    def _seed(seed: int) -> None:
        import torch

        torch.manual_seed(seed)
        random.seed(seed)

    def _build_loaders(self) -> None:
        from training.data.loader import HardNegSchedule, build_training_loader

        d = self.cfg.data
        paired = d.mode == "paired"
        size_kw = {"batch_pairs": d.batch_size // 2} if paired else {"batch_size": d.batch_size}
        common = {"seed": self.cfg.run.seed, "rank": self.dist.rank, "world_size": self.dist.world,
                  "num_workers": d.num_workers, "meta_columns": d.meta_columns,
                  "tier_weights": d.tier_weights or None, "store": self.store,
                  "hard_neg": HardNegSchedule(d.hard_neg_start, d.hard_neg_end, d.hard_neg_anneal_epochs)}
        self.train_loader = build_training_loader(d.shards, d.train_split, train=True, **size_kw, **common)
        self.val_loader = build_training_loader(d.shards, d.val_split, train=False, **size_kw, **common)
        if len(self.train_loader.sampler) == 0:
            raise ValueError(f"training split {d.train_split!r} has fewer rows than one batch per rank")

    def _build_transforms(self) -> None:
        from training.augment import Augment
        from training.preprocess import Preprocess

        self.preprocess = Preprocess(self.cfg.preprocess).to(self.device)
        self.augment = Augment(self.cfg.augment)
        self.amp = amp_dtype(self.cfg.run.amp, self.device)

    def _build_model(self, checkpoint: Optional[dict]) -> None:  # noqa: UP045
        import torch

        from training.memory_format import resolve
        from training.models import build_model

        m = self.cfg.model
        in_chans = self.store.shape[0] * self.cfg.preprocess.out_chans_factor
        model = build_model(m.name, in_chans=in_chans, pretrained_path=m.pretrained_path, init=m.init,
                            meta_dim=len(self.cfg.data.meta_columns), theta_head=m.theta_head,
                            meta_hidden=m.meta_hidden).to(self.device)
        if checkpoint is not None and "channels_last" in checkpoint:
            self.channels_last = bool(checkpoint["channels_last"])
        elif self.cfg.data.meta_columns and self.cfg.run.channels_last == "auto":
            self.channels_last = False  # the probe feeds images only; hybrid models keep NCHW unless told
        else:
            crop = self.cfg.preprocess.crop
            in_shape = (in_chans, crop or self.store.shape[1], crop or self.store.shape[2])
            self.channels_last = self.dist.broadcast(
                resolve(self.cfg.run.channels_last, model, self.device, in_shape, self.cfg.data.batch_size,
                        self.amp) if self.dist.main else None)
        self.memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        self.model = model.to(memory_format=self.memory_format)
        self.ddp = (torch.nn.parallel.DistributedDataParallel(
            self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
            if self.dist.enabled else self.model)

    def _build_optimizer(self) -> None:
        import torch

        from training.memory_format import build_adamw

        o = self.cfg.optim
        self.opt = build_adamw(self.model.parameters(), self.device, lr=o.lr, weight_decay=o.weight_decay)
        steps = len(self.train_loader.sampler)
        self.total_steps = steps * o.epochs
        self.sched = torch.optim.lr_scheduler.LambdaLR(
            self.opt, lr_lambda(self.total_steps, int(round(o.warmup_epochs * steps)), o.min_lr_frac))
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp == torch.float16)

    # -- checkpoints
    def _payload(self, epoch_done: int) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.opt.state_dict(),
                "scheduler": self.sched.state_dict(), "scaler": self.scaler.state_dict(),
                "epoch": epoch_done, "best_auc": self.best_auc, "best_epoch": self.best_epoch,
                "bad_epochs": self.bad_epochs, "rng": rng_state(), "data_hash": self.store.data_hash,
                "channels_last": self.channels_last, "config": json.dumps(self.config_dict, sort_keys=True)}

    def _resume_checkpoint(self) -> dict:
        path = os.path.join(self.out_dir, "last.pt")
        if not os.path.exists(path):
            raise FileNotFoundError(f"--resume: no checkpoint at {path}")
        ck = load_checkpoint(path)
        if ck["data_hash"] != self.store.data_hash:
            raise ValueError(f"--resume: checkpoint was trained on data {ck['data_hash'][:12]}, "
                             f"shards are {self.store.data_hash[:12]}")
        return ck

    def _restore(self, ck: dict) -> None:
        self.model.load_state_dict(ck["model"])
        self.opt.load_state_dict(ck["optimizer"])
        self.sched.load_state_dict(ck["scheduler"])
        self.scaler.load_state_dict(ck["scaler"])
        self.start_epoch, self.best_auc = int(ck["epoch"]), float(ck["best_auc"])
        self.best_epoch, self.bad_epochs = int(ck["best_epoch"]), int(ck["bad_epochs"])
        set_rng_state(ck["rng"])
        log.info("resumed from %s at epoch %d", os.path.join(self.out_dir, "last.pt"), self.start_epoch)

    # -- steps
    def _inputs(self, batch: dict, generator=None):
        x = batch["image"].to(self.device, non_blocking=True)
        if generator is not None:
            x = self.augment(x, generator)
        x = self.preprocess(x)
        if generator is not None and self.cfg.augment.noise_sigma > 0:
            from training.augment import add_noise

            x = add_noise(x, self.cfg.augment.noise_sigma, generator)
        x = x.contiguous(memory_format=self.memory_format)
        meta = self.preprocess.meta(batch["meta"].to(self.device, non_blocking=True)) \
            if self.cfg.data.meta_columns else None
        return x, meta

    def _forward_loss(self, batch: dict, generator):
        import torch

        from training.losses import classification_loss

        o = self.cfg.optim
        x, meta = self._inputs(batch, generator)
        y = batch["label"].to(self.device, non_blocking=True)
        w = batch["weight"].to(self.device, non_blocking=True)
        with torch.autocast(self.device.type, dtype=self.amp, enabled=self.amp is not None):
            if self.cfg.model.theta_head:
                logits, theta = self.ddp(x, meta, return_theta=True)
            else:
                logits, theta = self.ddp(x, meta), None
        loss = classification_loss(o.loss, logits, y, w, o.focal_alpha, o.focal_gamma)
        if theta is not None:  # θ_E loss on positives with a known θ_E (masked: no host sync)
            t = batch["theta_e"].to(self.device, non_blocking=True)
            has = (y > 0) & torch.isfinite(t)
            per = torch.nn.functional.smooth_l1_loss(theta.float(), torch.where(has, t, 0.0), reduction="none")
            loss = loss + self.cfg.model.theta_loss_weight * (per * has).sum() / has.sum().clamp_min(1)
        return loss

    def train_epoch(self, epoch: int, max_steps: Optional[int] = None) -> dict:  # noqa: UP045
        """One epoch (or its first ``max_steps`` steps). The loop never waits for the device: the
        loss sum stays on it and the non-finite check runs every ``run.nonfinite_check_every`` steps."""
        import torch

        self.ddp.train()
        sampler = self.train_loader.sampler
        sampler.set_epoch(epoch)
        watch = NonFiniteWatch(self.cfg.run.nonfinite_check_every, self.dist)
        ids_of = lambda rows: self.store.column("id")[rows.numpy()].tolist()  # noqa: E731
        total, count, n_img, t0 = torch.zeros((), device=self.device), 0, 0, time.perf_counter()
        gen = torch.Generator(device=self.device)
        bar = progress(self.train_loader, total=len(sampler), desc=f"epoch {epoch}", disable=not self.dist.main
                       or bool(os.environ.get("DHS_NO_PROGRESS")))
        for step, batch in enumerate(bar):
            gen.manual_seed(hash_seed(self.cfg.run.seed, epoch, step, self.dist.rank))
            loss = self._forward_loss(batch, gen)
            watch.add(step, loss, batch["row"])
            self.opt.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            if self.cfg.optim.grad_clip > 0:
                self.scaler.unscale_(self.opt)
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.optim.grad_clip)
            self.scaler.step(self.opt)
            self.scaler.update()
            self.sched.step()
            total += loss.detach().float()
            count += 1
            n_img += len(batch["row"])
            if watch.due():
                watch.check(epoch, ids_of)
            if max_steps is not None and count >= max_steps:
                break
        watch.check(epoch, ids_of)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        dt = time.perf_counter() - t0
        losses = self.dist.all_gather((float(total), count, n_img))
        return {"train_loss": sum(t for t, _, _ in losses) / max(1, sum(c for _, c, _ in losses)),
                "train_images_per_s": sum(n for _, _, n in losses) / dt, "epoch_time_s": dt,
                "lr": self.sched.get_last_lr()[0], "p_hard": sampler.p_hard() if sampler.paired else 0.0}

    def predict(self, loader) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(rows, labels, weights, logits) over a loader, gathered from all ranks."""
        import torch

        self.ddp.eval()
        rows, ys, ws, ls = [], [], [], []
        with torch.inference_mode():
            for batch in loader:
                x, meta = self._inputs(batch)
                with torch.autocast(self.device.type, dtype=self.amp, enabled=self.amp is not None):
                    logit = self.model(x, meta)
                rows.append(batch["row"].numpy())
                ys.append(batch["label"].numpy())
                ws.append(batch["weight"].numpy())
                ls.append(logit.float().cpu().numpy())
        local = tuple(np.concatenate(a) if a else np.zeros(0) for a in (rows, ys, ws, ls))
        parts = self.dist.all_gather(local)
        return tuple(np.concatenate([p[i] for p in parts]) for i in range(4))

    def fit(self, stop_after_epoch: Optional[int] = None) -> dict:  # noqa: UP045
        cfg = self.cfg
        last = {}
        for epoch in range(self.start_epoch, cfg.optim.epochs):
            row = {"epoch": epoch, **self.train_epoch(epoch)}
            _, y, w, logits = self.predict(self.val_loader)
            stop = False
            if self.dist.main:
                row.update(val_metrics(y, logits, w))
                auc = row["val_auc"]
                if math.isfinite(auc) and auc > self.best_auc:
                    self.best_auc, self.best_epoch, self.bad_epochs = auc, epoch, 0
                    save_checkpoint(os.path.join(self.out_dir, "best.pt"), self._payload(epoch + 1))
                else:
                    self.bad_epochs += 1
                save_checkpoint(os.path.join(self.out_dir, "last.pt"), self._payload(epoch + 1))
                self.writer.write(row)
                log.info("epoch %d: %s", epoch, {k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()})
                patience = cfg.run.early_stopping_patience
                stop = bool(patience and self.bad_epochs >= patience)
                if stop:
                    log.info("early stopping: no val AUC gain for %d epochs (best %.4f at epoch %d)",
                             patience, self.best_auc, self.best_epoch)
            last = row
            if self.dist.broadcast(stop) or (stop_after_epoch is not None and epoch + 1 >= stop_after_epoch):
                break
        return last

    def export(self) -> Optional[str]:  # noqa: UP045
        """Export best.pt (else the current weights) as the frozen model; rank 0 only."""
        from training.export import export_frozen_model

        if not self.dist.main:
            return None
        best = os.path.join(self.out_dir, "best.pt")
        if os.path.exists(best):
            self.model.load_state_dict(load_checkpoint(best)["model"])
        ids = self.store.column("id")[self.train_rows].tolist()
        hosts = (self.store.column("host_id")[self.train_rows].tolist()
                 if "host_id" in self.store.meta.column_names else None)
        model_id = export_frozen_model(self.model.to("cpu").to(memory_format=_contiguous()), self.config_dict,
                                       os.path.join(self.out_dir, "frozen"), data_manifest_hash=self.store.data_hash,
                                       preprocess=self.cfg.preprocess.model_dump(), trained_ids=ids,
                                       trained_host_ids=hosts, input_shape=self.store.shape)
        log.info("exported frozen model %s to %s", model_id, os.path.join(self.out_dir, "frozen"))
        return model_id

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        if self.lock is not None:
            self.lock.release()
        self.dist.close()


def _run_lock(out_dir: str):
    from training.run_lock import RunLock

    return RunLock(out_dir).acquire()


def _contiguous():
    import torch

    return torch.contiguous_format


def hash_seed(*parts: int) -> int:
    """A 63-bit seed from integers (SHA-256; identical on every machine and run)."""
    from dhs_gen.determinism import stable_hash64

    return stable_hash64(parts[0], ":".join(str(p) for p in parts[1:])) & ((1 << 63) - 1)


def run(cfg: TrainConfig, resume: bool = False, stop_after_epoch: Optional[int] = None) -> dict:  # noqa: UP045
    """Train (and export) one configuration in this process; returns the last epoch's metrics
    plus ``model_id`` and ``out_dir``. Raises NonFiniteLoss on a NaN/Inf loss."""
    trainer = Trainer(cfg, resume=resume)
    try:
        try:
            last = trainer.fit(stop_after_epoch)
        except NonFiniteLoss as exc:
            if trainer.dist.main:
                from dhs_gen.storage import write_json

                write_json(os.path.join(trainer.out_dir, "nonfinite_batch.json"),
                           {"epoch": exc.epoch, "step": exc.step, "ids": exc.ids})
            raise
        finished = stop_after_epoch is None or last.get("epoch", -1) + 1 >= cfg.optim.epochs
        model_id = trainer.export() if (cfg.run.export and finished) else None
        return {**last, "model_id": model_id, "out_dir": trainer.out_dir, "best_auc": trainer.best_auc,
                "best_epoch": trainer.best_epoch}
    finally:
        trainer.close()


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="dhs train", description=plain_text(__doc__))
    parser.add_argument("--config", required=True, help="YAML config (configs/train*.yaml)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    parser.add_argument("--resume", action="store_true", help="continue from <out_dir>/last.pt")
    parser.add_argument("--stop-after-epoch", type=int, default=None,
                        help="stop after this many epochs as if preempted (checkpoints kept; resume later)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    from dhs_gen.config import ConfigError, load_config
    from training.run_lock import RunLocked, exit_with_parent

    setup_logging()
    if LAUNCHER_ENV in os.environ:  # a torchrun worker: die with the launcher, never outlive it
        exit_with_parent()
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        cfg = load_config(TrainConfig, args.config, args.set)
    except ConfigError as exc:
        print(f"dhs train: {exc}", file=sys.stderr)
        return 2
    try:
        result = run(cfg, resume=args.resume, stop_after_epoch=args.stop_after_epoch)
    except NonFiniteLoss as exc:
        print(f"dhs train: {exc}", file=sys.stderr)
        return EXIT_NONFINITE
    except RunLocked as exc:
        print(f"dhs train: {exc}", file=sys.stderr)
        return 2
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps({k: v for k, v in result.items()}, default=str))
    return 0


if __name__ == "__main__":
    from dhs_gen.entrypoint import run_main

    sys.exit(run_main(main))
