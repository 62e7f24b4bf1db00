"""Which memory format (NCHW or channels_last) a model trains fastest in on a device: measured.

``run.channels_last: auto`` resolves, in order, to

1. the recorded measurement for this device (``configs/train_memory_format.yaml``, keyed ``cpu``
   or the CUDA device name, written by ``python -m benchmarks --only training`` into
   ``build/bench/train_memory_format.yaml`` and copied there), so runs on the same kind of
   device make the same choice (same seed => same output);
2. else a short measurement at start-up on the training device (:func:`measure`: a copy of the
   model, its own optimizer and inputs; the run's model, RNG and data are untouched), once per
   process and setting.

A resumed run keeps the format its checkpoint was trained in.
"""
from __future__ import annotations

import copy
import os
import time

import torch

from dhs_gen.log import get_logger

log = get_logger(__name__)
RECORD_NAME = "train_memory_format.yaml"
FORMATS = {"channels_last": torch.channels_last, "contiguous": torch.contiguous_format}
_MEASURED: dict = {}  # start-up measurements of this process


def device_key(device: torch.device) -> str:
    """``cpu`` or the CUDA device's name (e.g. ``NVIDIA H200``)."""
    return torch.cuda.get_device_name(device) if device.type == "cuda" else device.type


def record_paths() -> list[str]:
    """Where the recorded measurement is looked for: the checkout's configs/, then the copy a
    non-editable install ships inside dhs_gen."""
    here = os.path.dirname(os.path.abspath(__file__))
    import dhs_gen

    return [os.path.join(os.path.dirname(here), "configs", RECORD_NAME),
            os.path.join(os.path.dirname(os.path.abspath(dhs_gen.__file__)), "_shipped", "configs", RECORD_NAME)]


def recorded_choice(device: torch.device) -> dict | None:
    """The recorded measurement for this device (``channels_last``, ``images_per_s``, ...) or None."""
    import yaml

    for path in record_paths():
        if os.path.exists(path):
            with open(path) as f:
                entry = ((yaml.safe_load(f) or {}).get("devices") or {}).get(device_key(device))
            if entry is not None:
                return {**entry, "source": path}
    return None


def train_step_fn(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, amp: torch.dtype | None):
    """One forward + backward + AdamW step of ``model`` on a resident batch: the model-alone
    reference of the trainer (same optimizer, same autocast)."""
    opt = build_adamw(model.parameters(), x.device, lr=1e-4)

    def step():
        with torch.autocast(x.device.type, dtype=amp, enabled=amp is not None):
            logit = model(x)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logit.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def build_adamw(params, device: torch.device, lr: float, weight_decay: float = 0.0) -> torch.optim.AdamW:
    """AdamW with the fused kernel (one launch for all parameters on CUDA, vectorised on CPU)."""
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=True)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(model: torch.nn.Module, device: torch.device, in_shape: tuple, batch: int,
            amp: torch.dtype | None, steps: int = 3, warmup: int = 2, rounds: int = 2) -> dict:
    """Images/s of forward+backward+AdamW in each memory format (best of alternating rounds, after
    ``warmup`` steps): ``{"channels_last": ips, "contiguous": ips}``. Works on a deep copy."""
    gen = torch.Generator().manual_seed(0)
    x0 = torch.randn((batch, *in_shape), generator=gen).to(device)
    y = (torch.rand(batch, generator=gen) < 0.5).float().to(device)
    best = dict.fromkeys(FORMATS, 0.0)
    for _ in range(rounds):  # alternate: the machine's load drifts
        for name, fmt in FORMATS.items():
            probe = copy.deepcopy(model).to(device=device, memory_format=fmt).train()
            step = train_step_fn(probe, x0.contiguous(memory_format=fmt), y, amp)
            for _ in range(warmup):
                step()
            _sync(device)
            t0 = time.perf_counter()
            for _ in range(steps):
                step()
            _sync(device)
            best[name] = max(best[name], batch * steps / (time.perf_counter() - t0))
    return best


def resolve(setting, model: torch.nn.Module, device: torch.device, in_shape: tuple, batch: int,
            amp: torch.dtype | None) -> bool:
    """True for channels_last. ``setting``: True / False, or ``"auto"`` (see module docstring)."""
    if setting != "auto":
        return bool(setting)
    rec = recorded_choice(device)
    if rec is not None:
        log.info("memory format for %s: %s (recorded measurement %s: %s)", device_key(device),
                 "channels_last" if rec["channels_last"] else "NCHW", rec["source"], rec.get("images_per_s"))
        return bool(rec["channels_last"])
    probe_batch = batch if device.type == "cuda" else min(batch, 64)
    key = (device_key(device), getattr(model, "build_spec", {}).get("name", type(model).__name__),
           tuple(in_shape), probe_batch, str(amp))
    if key in _MEASURED:  # one measurement per process and setting: runs in one process agree
        return _MEASURED[key]
    rates = measure(model, device, in_shape, probe_batch, amp)
    choice = _MEASURED[key] = rates["channels_last"] > rates["contiguous"]
    log.info("memory format for %s: %s (measured at start-up, batch %d: %s images/s)", device_key(device),
             "channels_last" if choice else "NCHW", probe_batch, {k: round(v, 1) for k, v in rates.items()})
    return choice
