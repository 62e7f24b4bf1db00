"""Frozen-model export and loading: weights + config + provenance, content-addressed.

A frozen model directory holds ``weights.pt`` (state dict), ``trained_ids.txt`` (sorted ids the
model was trained on, one a line), ``model.json`` (model_id, build spec, preprocessing recipe,
training config, data manifest hash, trained-ids hash, code version, and the input it expects:
``input_shape`` (C, H, W) and ``input_size_pix`` (= H = W) of its raw training stamps [px], and
``pixel_scale_arcsec`` [arcsec/px]) and ``_SUCCESS`` written last. ``model_id`` = SHA-256 of the weight bytes and the
canonical JSON of build spec, preprocessing, config and input fields (bundles written before the
input fields existed hash without them), so a score row naming a model_id proves which model produced it, and
``FrozenModel.assert_disjoint(ids)`` proves a selection set was never trained on.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import time
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from dhs_gen import PIXEL_SCALE_ARCSEC
from dhs_gen.model_bundle import MODEL_JSON, TRAINED_HOSTS, TRAINED_IDS, ids_hash, read_id_list, read_record

WEIGHTS = "weights.pt"
FORMAT_VERSION = 1


def code_version() -> str:
    """git revision of the source tree (``+dirty`` when modified), else the package version."""
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        rev = subprocess.check_output(["git", "-C", here, "rev-parse", "HEAD"], text=True,
                                      stderr=subprocess.DEVNULL).strip()
        dirty = subprocess.run(["git", "-C", here, "diff", "--quiet", "HEAD", "--", "."],
                               stderr=subprocess.DEVNULL).returncode != 0
        return rev + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        from importlib.metadata import PackageNotFoundError, version

        try:
            return "dark-halo-scope==" + version("dark-halo-scope")
        except PackageNotFoundError:
            return "unknown"


INPUT_FIELDS = ("input_shape", "input_size_pix", "pixel_scale_arcsec")


def _canonical_json(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode()


def _id_payload(record: dict) -> bytes:
    """What model_id hashes besides the weights (input fields only when the record has them)."""
    keys = ("build_spec", "preprocess", "config", *(k for k in INPUT_FIELDS if k in record))
    return _canonical_json({k: record[k] for k in keys})


def _state_bytes(model) -> bytes:
    import torch

    module = getattr(model, "module", model)  # unwrap DDP
    state = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


def export_frozen_model(model, config: dict, out_dir: str, *, data_manifest_hash: str, preprocess: dict,
                        trained_ids: Iterable[str] | None = None,
                        trained_host_ids: Iterable[str] | None = None, input_shape: Sequence[int] | None = None,
                        pixel_scale_arcsec: float = PIXEL_SCALE_ARCSEC) -> str:
    """Write a frozen model to ``out_dir`` (file:// or s3://); return its model_id.

    ``model``: a LensFinderNet from training.models.build_model (or DDP-wrapped); ``config``: the
    resolved training config (JSON-able); ``preprocess``: the PreprocessSpec dict applied to raw
    nanomaggie stamps; ``trained_ids``: ids of every training row and ``trained_host_ids`` the host
    galaxies of injection rows (both kept to prove disjointness from a selection set);
    ``input_shape``: (C, H, W) of the raw square stamps it was trained on [px] (before any
    preprocessing crop), ``pixel_scale_arcsec``: their pixel scale [arcsec/px] - what scorers check
    stamps and users' own cutouts against.
    Each file is written atomically and ``_SUCCESS`` last; loaders refuse unmarked directories.
    """
    from dhs_gen.storage import join_uri, mark_complete, remove, write_bytes, write_text
    from training.preprocess import PreprocessSpec

    module = getattr(model, "module", model)
    spec = dict(getattr(module, "build_spec", {}) or {})
    if not spec.get("name"):
        raise ValueError("model has no build_spec (build it with training.models.build_model)")
    preprocess = PreprocessSpec(**preprocess).model_dump()
    weights = _state_bytes(module)
    ids = sorted({str(i) for i in trained_ids}) if trained_ids is not None else []
    hosts = sorted({str(i) for i in trained_host_ids}) if trained_host_ids is not None else []
    shape = None if input_shape is None else [int(v) for v in input_shape]
    if shape is not None and (len(shape) != 3 or min(shape) < 1 or shape[1] != shape[2]):
        raise ValueError(f"input_shape must be (C, H, W) of square stamps [px], got {input_shape}")
    inputs = {"input_shape": shape, "input_size_pix": None if shape is None else shape[1],
              "pixel_scale_arcsec": float(pixel_scale_arcsec)}
    digest = hashlib.sha256(weights)
    digest.update(_id_payload({"build_spec": spec, "preprocess": preprocess, "config": config, **inputs}))
    model_id = digest.hexdigest()
    record = {
        "format_version": FORMAT_VERSION,
        "model_id": model_id,
        "build_spec": spec,
        "preprocess": preprocess,
        "config": config,
        **inputs,
        "data_manifest_hash": str(data_manifest_hash),
        "trained_ids_hash": ids_hash(ids),
        "n_trained_ids": len(ids),
        "trained_host_ids_hash": ids_hash(hosts),
        "n_trained_host_ids": len(hosts),
        "code_version": code_version(),
        "weights_sha256": hashlib.sha256(weights).hexdigest(),
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    remove(join_uri(out_dir, "_SUCCESS"))
    write_bytes(join_uri(out_dir, WEIGHTS), weights)
    write_text(join_uri(out_dir, TRAINED_IDS), "".join(f"{i}\n" for i in ids))
    write_text(join_uri(out_dir, TRAINED_HOSTS), "".join(f"{i}\n" for i in hosts))
    write_bytes(join_uri(out_dir, MODEL_JSON), json.dumps(record, indent=2, sort_keys=True, default=str).encode())
    mark_complete(out_dir, {"model_id": model_id})
    return model_id


@dataclass
class FrozenModel:
    """A loaded frozen model: scores raw nanomaggie stamps with its own preprocessing."""

    model: object
    preprocess: object
    record: dict
    path: str
    device: str = "cpu"
    batch_size: int = 256
    _id_sets: dict = field(default_factory=dict, repr=False)

    @property
    def model_id(self) -> str:
        return self.record["model_id"]

    @property
    def config(self) -> dict:
        return self.record["config"]

    @property
    def data_manifest_hash(self) -> str:
        return self.record["data_manifest_hash"]

    @property
    def trained_ids_hash(self) -> str:
        return self.record["trained_ids_hash"]

    @property
    def code_version(self) -> str:
        return self.record["code_version"]

    def _id_set(self, name: str, hash_key: str) -> frozenset:
        if name not in self._id_sets:
            self._id_sets[name] = read_id_list(self.path, self.record, name, hash_key)
        return self._id_sets[name]

    def trained_ids(self) -> frozenset:
        """The row ids this model was trained on (verified against ``trained_ids_hash``)."""
        return self._id_set(TRAINED_IDS, "trained_ids_hash")

    def trained_host_ids(self) -> frozenset:
        """Host galaxy ids of the injections it was trained on (verified against their hash)."""
        return self._id_set(TRAINED_HOSTS, "trained_host_ids_hash")

    def assert_disjoint(self, ids: Iterable[str], host_ids: Iterable[str] | None = None) -> None:
        """Raise ValueError if any of ``ids`` (or of ``host_ids``) was in this model's training set."""
        for what, known, given in (("ids", self.trained_ids(), ids),
                                   ("host ids", self.trained_host_ids() if host_ids is not None else frozenset(),
                                    host_ids or ())):
            overlap = known.intersection(str(i) for i in given)
            if overlap:
                raise ValueError(f"{len(overlap)} {what} were used to train model {self.model_id[:12]}, "
                                 f"e.g. {sorted(overlap)[:3]}")

    def _run(self, images: np.ndarray, meta: np.ndarray | None, what: str) -> np.ndarray:
        import torch

        images = np.asarray(images)
        if images.ndim != 4 or images.dtype != np.float32:
            raise ValueError(f"images must be float32 (B, C, H, W) nanomaggies, got {images.dtype} {images.shape}")
        out = []
        with torch.inference_mode():
            for start in range(0, len(images), self.batch_size):
                x = torch.from_numpy(np.ascontiguousarray(images[start:start + self.batch_size])).to(self.device)
                m = None
                if meta is not None:
                    m = torch.from_numpy(np.asarray(meta[start:start + self.batch_size], dtype=np.float32))
                    m = m.to(self.device)
                x = self.preprocess(x)
                m = self.preprocess.meta(m)
                y = self.model.features(x, m) if what == "features" else self.model(x, m)
                out.append(y.float().cpu().numpy())
        if not out:
            width = (self.model.num_features,) if what == "features" else ()
            return np.zeros((0, *width), dtype=np.float32)
        return np.concatenate(out).astype(np.float32, copy=False)

    def predict_logits(self, images: np.ndarray, meta: np.ndarray | None = None) -> np.ndarray:
        """Logits (B,) for raw float32 (B, C, H, W) nanomaggie stamps (g, r, z), batched.

        ``meta``: (B, M) values of ``preprocess['meta_columns']`` for hybrid models.
        """
        return self._run(images, meta, "logits")

    def features(self, images: np.ndarray, meta: np.ndarray | None = None) -> np.ndarray:
        """Penultimate features (B, D) of raw float32 (B, C, H, W) stamps."""
        return self._run(images, meta, "features")


def load_frozen_model(path: str, device: str = "cpu", batch_size: int = 256) -> FrozenModel:
    """Load a frozen model directory; verifies completeness, weight checksum and model_id."""
    import torch

    from dhs_gen.storage import join_uri, read_bytes
    from training.models import build_model
    from training.preprocess import Preprocess

    record = read_record(path)
    if record.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path}: unsupported frozen-model format {record.get('format_version')!r}")
    weights = read_bytes(join_uri(path, WEIGHTS))
    digest = hashlib.sha256(weights)
    if digest.hexdigest() != record["weights_sha256"]:
        raise ValueError(f"{path}: weights.pt checksum mismatch (corrupt or replaced)")
    digest.update(_id_payload(record))
    if digest.hexdigest() != record["model_id"]:
        raise ValueError(f"{path}: model_id does not match weights + config")
    model = build_model(**record["build_spec"])
    model.load_state_dict(torch.load(io.BytesIO(weights), map_location="cpu", weights_only=True))
    model.to(device).eval()
    preprocess = Preprocess(record["preprocess"]).to(device)
    return FrozenModel(model=model, preprocess=preprocess, record=record, path=path, device=device,
                       batch_size=batch_size)
