"""Training/evaluation loaders over shards: batch requests in, collated raw float32 batches out.

The CPU side only reads and collates: a sampler yields one *request* per batch (row numbers and
the view of each row); a DataLoader worker turns it into ``{"image": float32 (B, C, H, W)
nanomaggies, "label", "weight", "row", "meta"}`` with one vectorised gather from the shards.
Normalisation and augmentation happen later on the training device (training.preprocess,
training.augment).

Partitioning: each epoch the split's rows are permuted by ``(seed, epoch)``
(``torch.utils.data.DistributedSampler``, ``set_epoch``) and dealt to ranks; each batch request
goes to exactly one DataLoader worker, so every sample is read once per epoch across workers and
ranks. Training drops the tail that does not divide by the number of ranks (different rows each
epoch); evaluation keeps every row exactly once and never pads.

Paired mode (``batch_pairs``): each batch holds ``batch_pairs`` injections' positives (label 1)
together with one negative from the same host (label 0): its hard negative with probability
``p_hard(epoch)`` (curriculum, linear from ``hard_neg_start`` to ``hard_neg_end`` over
``hard_neg_anneal_epochs``), else its control. Evaluation in paired mode scores every view of
every pair once. Plain mode: rows with their own ``label`` and ``sample_weight``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from training.data.store import ShardStore

POSITIVE_VIEW = "stamp"
NEGATIVE_VIEWS = ("ctrl_stamp", "hardneg_stamp")


@dataclass(frozen=True)
class HardNegSchedule:
    """P(hard negative) per epoch: linear ``start`` -> ``end`` over ``anneal_epochs``, then ``end``."""

    start: float = 0.5
    end: float = 0.2
    anneal_epochs: int = 10

    def __call__(self, epoch: int) -> float:
        if self.anneal_epochs <= 0:
            return self.end
        t = min(max(epoch, 0) / self.anneal_epochs, 1.0)
        return self.start + (self.end - self.start) * t


class StampBatchDataset(torch.utils.data.Dataset):
    """Map-style dataset whose items are whole batches: ``ds[(rows, views)]`` -> a collated dict."""

    def __init__(self, store: ShardStore, *, paired: bool, meta_columns: Sequence[str] = (),
                 tier_weights: dict | None = None):
        self.store = store
        self.paired = paired
        self.view_names = list(store.views)
        self.label = store.column("label").astype(np.float32)
        weight = store.column("sample_weight").astype(np.float32)
        if tier_weights:
            tiers = store.column("tier")
            factor = np.array([tier_weights.get(t, 1.0) if t is not None else 1.0 for t in tiers], np.float32)
            weight = weight * factor
        self.weight = weight
        self.meta = (np.stack([store.column(c).astype(np.float32) for c in meta_columns], axis=1)
                     if meta_columns else np.zeros((store.n_rows, 0), np.float32))
        self.theta = (store.column("theta_e_arcsec").astype(np.float32)
                      if "theta_e_arcsec" in store.meta.column_names else np.full(store.n_rows, np.nan, np.float32))

    def __len__(self) -> int:  # not used for sampling (the sampler yields requests)
        return self.store.n_rows

    def __getitem__(self, request) -> dict:
        rows, views = request
        rows = np.asarray(rows, np.int64)
        views = np.asarray(views, np.int8)
        image = np.empty((len(rows), *self.store.shape), np.float32)
        for v in np.unique(views):
            idx = np.flatnonzero(views == v)
            if idx[-1] - idx[0] + 1 == len(idx):  # a contiguous block: gather in place
                self.store.gather(self.view_names[v], rows[idx], out=image[idx[0]:idx[-1] + 1])
            else:
                image[idx] = self.store.gather(self.view_names[v], rows[idx])
        if self.paired:
            label = (views == self.view_names.index(POSITIVE_VIEW)).astype(np.float32)
            theta = np.where(label > 0, self.theta[rows], 0.0).astype(np.float32)
        else:
            label = self.label[rows]
            theta = self.theta[rows]
        return {"image": torch.from_numpy(image), "label": torch.from_numpy(label),
                "weight": torch.from_numpy(self.weight[rows].copy()), "row": torch.from_numpy(rows),
                "view": torch.from_numpy(views.astype(np.int64)), "meta": torch.from_numpy(self.meta[rows].copy()),
                "theta_e": torch.from_numpy(theta)}


class _Positions(torch.utils.data.Dataset):
    def __init__(self, n: int):
        self.n = n

    def __len__(self) -> int:
        return self.n


class EpochBatchSampler:
    """Yields one batch request ``(rows, views)`` per batch for this rank; ``set_epoch`` reshuffles."""

    def __init__(self, rows: np.ndarray, view_names: Sequence[str], *, batch_size: int, paired: bool,
                 train: bool, seed: int = 0, rank: int = 0, world_size: int = 1,
                 hard_neg: HardNegSchedule = HardNegSchedule(), drop_last: bool = False):
        self.rows = np.asarray(rows, np.int64)
        self.view_names = list(view_names)
        self.batch_size = int(batch_size)
        self.paired, self.train, self.seed = paired, train, int(seed)
        self.rank, self.world_size = int(rank), int(world_size)
        self.hard_neg = hard_neg
        self.drop_last = drop_last
        self.epoch = 0
        if paired:
            missing = [v for v in (POSITIVE_VIEW, *NEGATIVE_VIEWS[:1]) if v not in self.view_names]
            if missing:
                raise ValueError(f"paired mode needs views {missing}; shards have {self.view_names}")
        if train:
            self._dist = torch.utils.data.DistributedSampler(
                _Positions(len(self.rows)), num_replicas=world_size, rank=rank, shuffle=True, seed=seed,
                drop_last=True)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _positions(self) -> np.ndarray:
        if self.train:
            self._dist.set_epoch(self.epoch)
            return np.fromiter(iter(self._dist), dtype=np.int64)
        return np.arange(self.rank, len(self.rows), self.world_size, dtype=np.int64)

    def p_hard(self) -> float:
        return self.hard_neg(self.epoch) if "hardneg_stamp" in self.view_names else 0.0

    def _requests(self):
        pos = self._positions()
        step = self.batch_size
        if self.paired and not self.train:  # every view of every pair, once
            nviews = len(self.view_names)
            rows = np.repeat(self.rows[pos], nviews)
            views = np.tile(np.arange(nviews, dtype=np.int8), len(pos))
        elif self.paired:
            rng = np.random.default_rng([self.seed, self.epoch, 7919])
            hard = rng.random(len(self.rows)) < self.p_hard()
            neg_view = np.where(hard[pos], self.view_names.index("hardneg_stamp") if self.p_hard() > 0 else 0,
                                self.view_names.index("ctrl_stamp")).astype(np.int8)
            pos_view = np.full(len(pos), self.view_names.index(POSITIVE_VIEW), np.int8)
            half = step // 2
            for start in range(0, len(pos), half):
                sl = slice(start, start + half)
                if self.drop_last and len(pos[sl]) < half:
                    return
                order = np.argsort(pos[sl], kind="stable")  # in-batch order is free: sorted reads
                r = self.rows[pos[sl]][order]
                yield np.concatenate([r, r]), np.concatenate([pos_view[sl][order], neg_view[sl][order]])
            return
        else:
            rows, views = self.rows[pos], np.zeros(len(pos), np.int8)
        for start in range(0, len(rows), step):
            if self.drop_last and len(rows) - start < step:
                return
            r, v = rows[start:start + step], views[start:start + step]
            order = np.argsort(r, kind="stable")  # in-batch order is free: sorted reads
            yield r[order], v[order]

    def __iter__(self):
        return self._requests()

    def __len__(self) -> int:
        n = len(self._dist) if self.train else len(range(self.rank, len(self.rows), self.world_size))
        per_batch = self.batch_size // 2 if (self.paired and self.train) else self.batch_size
        if self.paired and not self.train:
            n *= len(self.view_names)
        return n // per_batch if self.drop_last else -(-n // per_batch)


def split_rows(store: ShardStore, split: str) -> np.ndarray:
    """Global row numbers of one split (``split`` column)."""
    rows = np.flatnonzero(store.column("split") == split)
    if not len(rows):
        found = sorted(set(store.column("split").tolist()))
        raise ValueError(f"no rows with split={split!r} in {store.index_path} (splits: {found})")
    return rows


def build_training_loader(index_path: str, split: str = "train", *, batch_size: int | None = None,
                          batch_pairs: int | None = None, train: bool = True, seed: int = 0,
                          rank: int | None = None, world_size: int | None = None, num_workers: int = 2,
                          pin_memory: bool | None = None, meta_columns: Sequence[str] = (),
                          tier_weights: dict | None = None, hard_neg: HardNegSchedule = HardNegSchedule(),
                          drop_last: bool | None = None, store: ShardStore | None = None,
                          prefetch_factor: int = 4) -> torch.utils.data.DataLoader:
    """A DataLoader of collated raw batches for one split of a shard set.

    Plain mode: ``batch_size`` rows per batch. Paired mode: ``batch_pairs`` positives (rows with
    label 1) with their own negatives (2 x batch_pairs per batch); in evaluation every view of a
    pair is scored.
    ``rank``/``world_size`` default to torch.distributed's. Call ``loader.sampler.set_epoch(e)``
    before each epoch. Training drops the last partial batch by default, evaluation never does.
    """
    if (batch_size is None) == (batch_pairs is None):
        raise ValueError("give exactly one of batch_size (plain mode) or batch_pairs (paired mode)")
    if rank is None or world_size is None:
        dist = torch.distributed.is_available() and torch.distributed.is_initialized()
        rank = torch.distributed.get_rank() if dist else 0
        world_size = torch.distributed.get_world_size() if dist else 1
    store = store or ShardStore(index_path)
    paired = batch_pairs is not None
    dataset = StampBatchDataset(store, paired=paired, meta_columns=meta_columns, tier_weights=tier_weights)
    rows = split_rows(store, split)
    if paired:  # pairs are built around injected positives; control rows of legacy tables are not pairs
        rows = rows[dataset.label[rows] > 0]
        if not len(rows):
            raise ValueError(f"paired mode: no injected (label 1) rows in split {split!r}")
    sampler = EpochBatchSampler(rows, store.views, batch_size=(2 * batch_pairs if paired else batch_size),
                                paired=paired, train=train, seed=seed, rank=rank, world_size=world_size,
                                hard_neg=hard_neg, drop_last=train if drop_last is None else drop_last)
    if pin_memory is None:
        pin_memory = torch.cuda.is_available()
    return torch.utils.data.DataLoader(
        dataset, sampler=sampler, batch_size=None, num_workers=num_workers, pin_memory=pin_memory,
        persistent_workers=num_workers > 0, prefetch_factor=prefetch_factor if num_workers > 0 else None)
