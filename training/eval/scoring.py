"""Batch scoring of stamp tables with a frozen model or a calibrated ensemble.

``Scorer.score_table(table)`` turns any table with an id column and a stamp blob column
(canonical blobs or any legacy layout) into the ``scores`` dataset: id, logit, model_score
(calibrated probability), model_id, status (one row per input row; rows that cannot be scored
keep NaN scores and a reason: missing_stamp, decode_error, nonfinite_pixels, shape_mismatch,
input_not_ok, in_training_set). The same function is the Spark job's batch function
(jobs/score.py) and the local/GPU path. torch is only imported by the frozen models themselves.

Calibration file (``calibration.json``, written by ``dhs evaluate``)::

    {"kind": "single", "model_id": ..., "temperature": T}
    {"kind": "ensemble", "member_temperatures": {model_id: T_m}, "ensemble_temperature": T}

For one model ``logit`` is the model's logit and ``model_score = sigmoid(logit / T)``; for an
ensemble ``logit`` is mean_m(logit_m / T_m) and ``model_score = sigmoid(logit / T_ens)``.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Dict, List, Sequence

import numpy as np
import pyarrow as pa

from dhs_gen.io.stamps import (
    CANONICAL_MAGIC,
    StampDecodeError,
    decode_canonical_image,
    decode_stamp_npz,
    majority_shape,
)
from dhs_gen.schemas import STATUS_OK, get_dataset
from training.eval.calibration import calibrated_proba

SCORES_SCHEMA = get_dataset("scores").schema


def decode_stamps(blobs: Sequence, size=None, shape: tuple | None = None):
    """Decode stamp blobs -> (images float32 (n_ok, C, H, W), ok mask (N,), statuses (N,)).

    Statuses: ok | missing_stamp | decode_error (any undecodable blob: truncated, tiny, corrupt,
    too large) | nonfinite_pixels | shape_mismatch. The expected shape is declared, never taken
    from the first row: ``shape`` (C, H, W) (the model's input), else ``size`` (the stamp side
    [px], one int or one per row: the dataset's declared size), else the majority (C, H, W) of
    the decodable stamps (:func:`dhs_gen.io.stamps.majority_shape`).
    """
    sizes = list(size) if size is not None and not isinstance(size, (int, np.integer)) else [size] * len(blobs)
    decoded, statuses = [], []
    for blob, side in zip(blobs, sizes):
        img = None
        if blob is None or len(blob) == 0:
            statuses.append("missing_stamp")
        else:
            try:
                if bytes(blob[:8]) == CANONICAL_MAGIC:
                    img = decode_canonical_image(blob)
                else:
                    img = decode_stamp_npz(blob, nan_policy="report").image
            except StampDecodeError:
                statuses.append("decode_error")
            else:
                if not np.all(np.isfinite(img)):
                    img, _ = None, statuses.append("nonfinite_pixels")
                elif side is not None and img.shape[1:] != (int(side), int(side)):
                    img, _ = None, statuses.append("shape_mismatch")
                else:
                    statuses.append(STATUS_OK)
        decoded.append(img)
    if shape is None:
        shape = majority_shape([img.shape for img in decoded if img is not None])
    images = []
    for i, img in enumerate(decoded):
        if img is None:
            continue
        if img.shape != tuple(shape):
            statuses[i] = "shape_mismatch"
            continue
        images.append(img)
    ok = np.array([s == STATUS_OK for s in statuses], dtype=bool)
    stack = np.stack(images).astype(np.float32, copy=False) if images else np.zeros((0, 3, 1, 1), np.float32)
    return stack, ok, statuses


@dataclass
class Scorer:
    """One frozen model or an ensemble, with its calibration. ``members`` expose ``model_id``
    and ``predict_logits(images, meta=None)``."""

    members: List[object]
    member_temperatures: List[float]
    temperature: float
    meta_columns: List[str] = field(default_factory=list)
    _trained: frozenset | None = field(default=None, init=False, repr=False)

    def __post_init__(self):
        if not self.members or len(self.member_temperatures) != len(self.members):
            raise ValueError("a scorer needs >= 1 member and one temperature per member")
        if not self.temperature > 0 or not all(t > 0 for t in self.member_temperatures):
            raise ValueError("temperatures must be > 0")

    @property
    def model_id(self) -> str:
        """The member's model_id, or for an ensemble a SHA-256 over member ids and temperatures."""
        if len(self.members) == 1:
            return self.members[0].model_id
        key = "|".join(f"{m.model_id}:{t!r}" for m, t in zip(self.members, self.member_temperatures))
        return "ensemble-" + hashlib.sha256(f"{key}|{self.temperature!r}".encode()).hexdigest()

    def logits(self, images: np.ndarray, meta: np.ndarray | None = None) -> np.ndarray:
        """(N,) float64: the model logit, or the ensemble's mean temperature-scaled logit."""
        if len(self.members) == 1:
            return np.asarray(self.members[0].predict_logits(images, meta), dtype=np.float64)
        parts = [np.asarray(m.predict_logits(images, meta), dtype=np.float64) / t
                 for m, t in zip(self.members, self.member_temperatures)]
        return np.mean(parts, axis=0)

    def trained_ids(self) -> frozenset:
        """Union of the ids every member was trained on (cached)."""
        if self._trained is None:
            self._trained = frozenset().union(*(m.trained_ids() for m in self.members))
        return self._trained

    def proba(self, logits) -> np.ndarray:
        """Calibrated probability sigmoid(logit / T)."""
        return calibrated_proba(logits, self.temperature)

    def score_table(self, table, *, id_column: str = "id", stamp_column: str = "stamp",
                    keep_columns: Sequence[str] = (), size: int | None = None,
                    batch_size: int = 512, exclude_trained: bool = False) -> pa.Table:
        """Score every row of a pyarrow Table/RecordBatch -> scores table (+ ``keep_columns``).

        ``exclude_trained``: rows whose id any member was trained on get status
        ``in_training_set`` and no score (selection-function inputs must be held out).
        """
        if isinstance(table, pa.RecordBatch):
            table = pa.Table.from_batches([table])
        missing = [c for c in (id_column, stamp_column, *keep_columns, *self.meta_columns)
                   if c not in table.column_names]
        if missing:
            raise ValueError(f"input lacks columns {missing}; has {table.column_names}")
        n = table.num_rows
        logit = np.full(n, np.nan, dtype=np.float64)
        status = np.empty(n, dtype=object)
        in_ok = _input_ok(table)
        trained = np.zeros(n, dtype=bool)
        if exclude_trained:
            seen = self.trained_ids()
            trained = np.array([str(i) in seen for i in table.column(id_column).to_pylist()], dtype=bool)
        # The expected stamp: the model's input shape, else the declared size (argument, else the
        # table's stamp_size/size column); never the first row's (one odd stamp must not sink the rest).
        shape = self.input_shape
        sizes = size if size is not None else declared_sizes(table)
        if shape is None and sizes is None:
            majority, found, _ = decode_stamps(table.column(stamp_column).to_pylist())
            shape = majority.shape[1:] if found.any() else None
        for start in range(0, n, batch_size):
            stop = min(n, start + batch_size)
            batch_sizes = sizes[start:stop] if isinstance(sizes, list) else sizes
            images, dec_ok, statuses = decode_stamps(table.column(stamp_column).slice(start, stop - start).to_pylist(),
                                                     batch_sizes, shape)
            inp, tr = in_ok[start:stop], trained[start:stop]
            status[start:stop] = ["in_training_set" if t_ else (s if good else "input_not_ok")
                                  for s, good, t_ in zip(statuses, inp, tr)]
            good = dec_ok & inp & ~tr
            if good.any():
                sel = np.flatnonzero(good)
                logit[start + sel] = self.logits(images[good[dec_ok]], self._meta(table, start, stop, sel))
        p = np.where(np.isfinite(logit), self.proba(np.nan_to_num(logit)), np.nan)
        out = pa.table({
            "id": table.column(id_column).cast(pa.string()),
            "logit": pa.array(logit.astype(np.float32)),
            "model_score": pa.array(p.astype(np.float32)),
            "model_id": pa.array([self.model_id] * n, pa.string()),
            "status": pa.array(status.tolist(), pa.string()),
        }, schema=SCORES_SCHEMA)
        for c in keep_columns:
            if c != "id":
                out = out.append_column(c, table.column(c))
        return out

    @property
    def input_shape(self) -> tuple | None:
        """The (C, H, W) the frozen models declare as their input (``input_shape`` in model.json),
        when they all declare the same one; None otherwise."""
        shapes = {tuple(getattr(m, "record", {}).get("input_shape") or ()) for m in self.members}
        return shapes.pop() if len(shapes) == 1 and () not in shapes else None

    def _meta(self, table: pa.Table, start: int, stop: int, sel: np.ndarray) -> np.ndarray | None:
        if not self.meta_columns:
            return None
        cols = [table.column(c).slice(start, stop - start).to_numpy(zero_copy_only=False).astype(np.float32)
                for c in self.meta_columns]
        return np.stack(cols, axis=1)[sel]


def declared_sizes(table: pa.Table) -> list | None:
    """The stamp side each row declares [px] (``stamp_size`` of stamps tables, ``size`` of cutout
    indexes), or None when the table declares none."""
    for name in ("stamp_size", "size"):
        if name in table.column_names and pa.types.is_integer(table.schema.field(name).type):
            return table.column(name).to_pylist()
    return None


def _input_ok(table: pa.Table) -> np.ndarray:
    """Rows the upstream stage marked usable (status == 'ok' and cutout_ok where present)."""
    ok = np.ones(table.num_rows, dtype=bool)
    if "status" in table.column_names:
        ok &= np.asarray([s == STATUS_OK for s in table.column("status").to_pylist()], dtype=bool)
    if "cutout_ok" in table.column_names:
        ok &= np.asarray([bool(v) for v in table.column("cutout_ok").to_pylist()], dtype=bool)
    return ok


def load_scorer(model_paths: Sequence[str], *, calibration: dict | None = None,
                temperature: float | None = None, device: str = "cpu", batch_size: int = 256) -> Scorer:
    """Load frozen model(s) and their calibration (a ``calibration.json`` dict) or an explicit
    temperature (single model only). Refuses a calibration fitted for other model ids."""
    from training.export import load_frozen_model

    if not model_paths:
        raise ValueError("no model paths given")
    members = [load_frozen_model(p, device=device, batch_size=batch_size) for p in model_paths]
    metas = {tuple(m.record["preprocess"].get("meta_columns", [])) for m in members}
    if len(metas) != 1:
        raise ValueError(f"ensemble members need the same meta_columns, got {sorted(metas)}")
    return scorer_from_calibration(members, calibration, temperature, list(metas.pop()))


def scorer_from_calibration(members: List[object], calibration: dict | None,
                            temperature: float | None, meta_columns: Sequence[str] = ()) -> Scorer:
    """Build a Scorer from loaded members and a calibration dict or explicit temperature."""
    if (calibration is None) == (temperature is None):
        raise ValueError("give exactly one of calibration (calibration.json) or an explicit temperature")
    ids = [m.model_id for m in members]
    if temperature is not None:
        if len(members) != 1:
            raise ValueError("an ensemble needs its calibration.json (member and ensemble temperatures)")
        return Scorer(members, [1.0], float(temperature), list(meta_columns))
    kind = calibration.get("kind")
    if kind == "single":
        if len(members) != 1 or calibration.get("model_id") != ids[0]:
            raise ValueError(f"calibration is for model {calibration.get('model_id')!r}, not {ids}")
        return Scorer(members, [1.0], float(calibration["temperature"]), list(meta_columns))
    if kind == "ensemble":
        temps: Dict[str, float] = calibration.get("member_temperatures", {})
        if sorted(temps) != sorted(ids):
            raise ValueError(f"calibration members {sorted(temps)} differ from loaded models {sorted(ids)}")
        order = sorted(range(len(members)), key=lambda i: ids[i])
        return Scorer([members[i] for i in order], [float(temps[ids[i]]) for i in order],
                      float(calibration["ensemble_temperature"]), list(meta_columns))
    raise ValueError(f"unknown calibration kind {kind!r} (single | ensemble)")


def top_k(scores: pa.Table, k: int, column: str = "model_score") -> pa.Table:
    """The ``k`` highest-scoring ok rows, descending, ties broken by id (deterministic)."""
    import pyarrow.compute as pc

    ok = scores.filter(pc.and_(pc.equal(scores["status"], STATUS_OK), pc.is_finite(scores[column])))
    order = pc.sort_indices(ok, sort_keys=[(column, "descending"), ("id", "ascending")])
    return ok.take(order[:k])
