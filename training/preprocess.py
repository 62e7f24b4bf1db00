"""Batched preprocessing on the training device: crop, robust normalisation, 6-channel view.

Everything takes raw stamps — float32 tensors (B, C, H, W) in nanomaggies, g, r, z — and runs as
tensor ops on whatever device the batch is on (the GPU when present), so the data loader only
reads and collates. The whole recipe is a plain dict (``PreprocessSpec``) stored with every
frozen model, so scoring applies exactly the preprocessing the model was trained with.

Normalisation ``outer_mad``: per stamp and band, (x - median) / (1.4826 * MAD) over the outer
region r >= ``outer_r_frac`` * side (16 px on 64-px stamps), clipped at ±``clip``.
``asinh``: asinh of that normalised value divided by ``asinh_scale``. ``none``: raw nanomaggies.
The 6-channel view appends, per band, the residual band - GaussianBlur(band, σ = residual_sigma_px),
clipped at ±residual_clip (in normalised units).
"""
from __future__ import annotations

import functools
import math
from typing import List, Literal, Optional, get_args

import numpy as np
import torch
from pydantic import Field

from dhs_gen.config import StrictModel

MAD_TO_SIGMA = 1.4826
NormMode = Literal["outer_mad", "asinh", "none"]
NORM_MODES = get_args(NormMode)


class PreprocessSpec(StrictModel):
    """The preprocessing recipe (saved with the frozen model)."""

    crop: Optional[int] = Field(None,  # noqa: UP045 (pydantic on py3.9)
                                description="centre crop side [px] (e.g. 101 -> 64); None keeps the stamp")
    norm: NormMode = Field("outer_mad", description="per-stamp normalisation (see module docstring)")
    outer_r_frac: float = Field(0.25, gt=0, lt=0.71, description="outer region r >= frac * side")
    clip: float = Field(10.0, gt=0, description="clip of normalised pixels [sigma]")
    asinh_scale: float = Field(1.0, gt=0)
    six_channel: bool = False
    residual_sigma_px: float = Field(3.0, gt=0, description="Gaussian blur sigma of the residual [px]")
    residual_clip: float = Field(10.0, gt=0)
    meta_columns: List[str] = Field(default_factory=list, description="metadata inputs, e.g. psfsize_r")
    meta_mean: List[float] = Field(default_factory=list, description="standardisation of meta_columns")
    meta_std: List[float] = Field(default_factory=list)

    @property
    def out_chans_factor(self) -> int:
        return 2 if self.six_channel else 1


def center_crop(x: torch.Tensor, size: int | None) -> torch.Tensor:
    """Centre crop (B, C, H, W) to (B, C, size, size); the centre pixel stays the centre pixel."""
    if size is None:
        return x
    h, w = x.shape[-2:]
    if size > h or size > w:
        raise ValueError(f"crop {size} larger than stamp {h}x{w}")
    top, left = (h - size) // 2, (w - size) // 2
    return x[..., top:top + size, left:left + size]


def make_outer_mask(h: int, w: int, r_inner: float, device=None) -> torch.Tensor:
    """Boolean (H, W) mask of pixels at radius >= ``r_inner`` [px] from the stamp centre."""
    return _outer_mask(int(h), int(w), float(r_inner), str(device or "cpu"))


@functools.lru_cache(maxsize=32)
def _outer_mask(h: int, w: int, r_inner: float, device: str) -> torch.Tensor:
    yy = torch.arange(h, dtype=torch.float32) - (h - 1) / 2
    xx = torch.arange(w, dtype=torch.float32) - (w - 1) / 2
    r = torch.sqrt(yy[:, None] ** 2 + xx[None, :] ** 2)
    mask = r >= r_inner
    if not bool(mask.any()):
        raise ValueError(f"outer mask empty: r_inner {r_inner} px on a {h}x{w} stamp")
    return mask.to(device)


@functools.lru_cache(maxsize=32)
def _outer_index(h: int, w: int, r_inner: float, device: str) -> torch.Tensor:
    """Flat pixel indices of the outer mask (built on the host once, so the per-batch gather never
    waits for the device: boolean-mask indexing would sync on every call)."""
    return torch.nonzero(_outer_mask(h, w, r_inner, "cpu").flatten()).flatten().to(device)


def lower_median(v: torch.Tensor) -> torch.Tensor:
    """Lower median over the last axis (introselect via numpy on CPU, ``torch.median`` elsewhere)."""
    if v.device.type != "cpu":
        return v.median(dim=-1).values
    k = (v.shape[-1] - 1) // 2
    arr = v.detach().numpy()
    return torch.from_numpy(np.partition(arr, k, axis=-1)[..., k].copy())


def outer_median_mad(x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per (stamp, band) median and MAD (unscaled) over ``mask`` pixels: two (B, C, 1, 1) tensors.

    ``mask``: boolean (H, W), or the flat indices of its pixels. The median of an even count is
    the lower middle value (``torch.median``; numpy's ``np.quantile(v, 0.5, method="lower")``).
    """
    index = mask if mask.dtype != torch.bool else torch.nonzero(mask.flatten()).flatten()
    vals = x.flatten(-2).index_select(-1, index.to(x.device))  # (B, C, K)
    med = lower_median(vals).unsqueeze(-1)
    mad = lower_median((vals - med).abs())
    return med.unsqueeze(-1), mad[..., None, None]


def normalize(x: torch.Tensor, spec: PreprocessSpec) -> torch.Tensor:
    """Robust per-stamp, per-band normalisation (see module docstring)."""
    if spec.norm == "none":
        return x
    if spec.norm not in NORM_MODES:
        raise ValueError(f"unknown norm {spec.norm!r}; choose from {NORM_MODES}")
    h, w = x.shape[-2:]
    index = _outer_index(int(h), int(w), float(spec.outer_r_frac * min(h, w)), str(x.device))
    med, mad = outer_median_mad(x, index)
    scale = (MAD_TO_SIGMA * mad).clamp_min(1e-12)
    z = (x - med) / scale
    if spec.norm == "asinh":
        z = torch.asinh(z / spec.asinh_scale)
        return z.clamp(-math.asinh(spec.clip / spec.asinh_scale), math.asinh(spec.clip / spec.asinh_scale))
    return z.clamp(-spec.clip, spec.clip)


def gaussian_kernel1d(sigma: float, device=None, dtype=torch.float32) -> torch.Tensor:
    """Normalised 1-D Gaussian (odd length, ±3σ)."""
    radius = max(1, int(math.ceil(3 * sigma)))
    t = torch.arange(-radius, radius + 1, device=device, dtype=dtype)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


@functools.lru_cache(maxsize=32)
def _blur_matrix(n: int, sigma: float, device: str, dtype: torch.dtype) -> torch.Tensor:
    """(n, n) matrix applying a 1-D Gaussian with reflect boundaries: y = M @ x."""
    k = gaussian_kernel1d(sigma, dtype=torch.float64)
    r = min(k.numel() // 2, n - 1)
    k = k[k.numel() // 2 - r: k.numel() // 2 + r + 1]
    k = k / k.sum()
    m = torch.zeros(n, n, dtype=torch.float64)
    i = torch.arange(n)
    for t in range(-r, r + 1):
        j = i + t
        j = torch.where(j < 0, -j, j)
        j = torch.where(j > n - 1, 2 * (n - 1) - j, j)
        m.index_put_((i, j), k[t + r].expand(n), accumulate=True)
    return m.to(device=device, dtype=dtype)


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of (B, C, H, W) per channel, reflect boundaries, as two small matmuls
    (M_h @ x @ M_w^T: BLAS/tensor-core speed instead of a depthwise convolution)."""
    h, w = x.shape[-2:]
    mh = _blur_matrix(h, float(sigma), str(x.device), x.dtype)
    mw = mh if w == h else _blur_matrix(w, float(sigma), str(x.device), x.dtype)
    return torch.matmul(torch.matmul(mh, x), mw.T)


class Preprocess6CH(torch.nn.Module):
    """g, r, z (normalised) plus the high-pass residual of each: (B, 3, H, W) -> (B, 6, H, W)."""

    def __init__(self, residual_sigma_px: float = 3.0, residual_clip: float = 10.0):
        super().__init__()
        self.sigma = float(residual_sigma_px)
        self.clip = float(residual_clip)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        out = x.new_empty((b, 2 * c, h, w))
        out[:, :c] = x
        torch.sub(x, gaussian_blur(x, self.sigma), out=out[:, c:])
        out[:, c:].clamp_(-self.clip, self.clip)
        return out


class Preprocess(torch.nn.Module):
    """The whole recipe as one module: raw nanomaggie stamps -> model input (and metadata)."""

    def __init__(self, spec: PreprocessSpec | dict):
        super().__init__()
        self.spec = spec if isinstance(spec, PreprocessSpec) else PreprocessSpec(**spec)
        self.six = (Preprocess6CH(self.spec.residual_sigma_px, self.spec.residual_clip)
                    if self.spec.six_channel else None)
        n = len(self.spec.meta_columns)
        if len(self.spec.meta_mean) not in (0, n) or len(self.spec.meta_std) not in (0, n):
            raise ValueError("meta_mean/meta_std must match meta_columns in length")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4:
            raise ValueError(f"expected stamps (B, C, H, W), got shape {tuple(x.shape)}")
        x = normalize(center_crop(x.float(), self.spec.crop), self.spec)
        return self.six(x) if self.six is not None else x

    def meta(self, meta: torch.Tensor | None) -> torch.Tensor | None:
        """Standardise metadata (B, M) with the training-set mean/std; None when unused."""
        if not self.spec.meta_columns:
            return None
        if meta is None:
            raise ValueError(f"metadata {self.spec.meta_columns} required")
        meta = meta.float()
        if self.spec.meta_mean:
            mean = torch.tensor(self.spec.meta_mean, device=meta.device)
            std = torch.tensor(self.spec.meta_std, device=meta.device).clamp_min(1e-6)
            meta = (meta - mean) / std
        return torch.nan_to_num(meta, nan=0.0)
