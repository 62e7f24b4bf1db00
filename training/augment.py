"""Safe, batched augmentations on the training device: dihedral flips/rotations, small integer
shifts, mild PSF blur and mild noise. No interpolation, no colour changes, nothing that would
erase or fake an arc.

``Augment(spec)(x, generator)`` acts on raw stamps (B, C, H, W) [nanomaggies] before the
preprocessing (blur and shifts are physical there); ``add_noise`` acts after normalisation
(σ in units of the normalised background). Randomness comes only from the given
``torch.Generator`` (seeded per step by the trainer, so a resumed run draws the same numbers).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field

from dhs_gen.config import StrictModel
from training.preprocess import gaussian_kernel1d


class AugmentSpec(StrictModel):
    """Augmentation switches and strengths (0 disables each)."""

    dihedral: bool = Field(True, description="random 90-degree rotations and flips")
    max_shift_px: int = Field(2, ge=0, le=5, description="integer shifts up to this many pixels")
    blur_prob: float = Field(0.0, ge=0, le=1, description="probability of a mild Gaussian PSF blur")
    blur_max_sigma_px: float = Field(0.5, ge=0, le=1.0, description="blur sigma ~ U(0, max) [px]")
    noise_sigma: float = Field(0.0, ge=0, le=0.2, description="added N(0, s) in normalised units")


def _uniform(n: int, generator: torch.Generator, device) -> torch.Tensor:
    return torch.rand(n, generator=generator, device=generator.device).to(device)


def dihedral(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Each stamp gets one of the 8 symmetries of the square (rot90 k times, optional flip)."""
    b = x.shape[0]
    k = (_uniform(b, generator, x.device) * 4).long().clamp_max(3)
    flip = _uniform(b, generator, x.device) < 0.5
    out = torch.where(flip[:, None, None, None], x.flip(-1), x)
    if x.shape[-1] != x.shape[-2]:
        raise ValueError("dihedral augmentation needs square stamps")
    for r in (1, 2, 3):
        sel = k == r
        out = torch.where(sel[:, None, None, None], torch.rot90(out, r, dims=(-2, -1)), out)
    return out


def shift(x: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Integer shifts in [-max_shift, max_shift] per stamp and axis, reflect-padded (one gather)."""
    if max_shift <= 0:
        return x
    b, c, h, w = x.shape
    d = (_uniform(2 * b, generator, x.device) * (2 * max_shift + 1)).long().clamp_max(2 * max_shift)
    dy, dx = d[:b], d[b:]
    padded = F.pad(x, (max_shift,) * 4, mode="reflect")
    rows = (torch.arange(h, device=x.device)[None, :] + dy[:, None])  # (B, H)
    cols = (torch.arange(w, device=x.device)[None, :] + dx[:, None])  # (B, W)
    bi = torch.arange(b, device=x.device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[bi, rows[:, :, None], cols[:, None, :]]  # (B, H, W, C)
    return out.permute(0, 3, 1, 2).contiguous()


def random_blur(x: torch.Tensor, prob: float, max_sigma: float, generator: torch.Generator) -> torch.Tensor:
    """Blur a random subset of stamps with a Gaussian of σ ~ U(0.1, max_sigma) px (per stamp).

    Every stamp is blurred and the picked ones kept (``torch.where``): no host sync and no
    data-dependent shapes, so the step never waits for the device.
    """
    if prob <= 0 or max_sigma <= 0:
        return x
    b, c, h, w = x.shape
    pick = _uniform(b, generator, x.device) < prob
    sigma = 0.1 + _uniform(b, generator, x.device) * max(max_sigma - 0.1, 0.0)
    radius = gaussian_kernel1d(max_sigma, x.device).numel() // 2
    t = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    k = torch.exp(-0.5 * (t[None, :] / sigma[:, None]) ** 2)
    k = k / k.sum(dim=1, keepdim=True)  # (B, K)
    kx = k.repeat_interleave(c, dim=0)  # (B*C, K)
    sub = x.reshape(1, b * c, h, w)
    sub = F.conv2d(F.pad(sub, (radius, radius, 0, 0), mode="reflect"), kx[:, None, None, :], groups=b * c)
    sub = F.conv2d(F.pad(sub, (0, 0, radius, radius), mode="reflect"), kx[:, None, :, None], groups=b * c)
    return torch.where(pick[:, None, None, None], sub.reshape(b, c, h, w), x)


def add_noise(x: torch.Tensor, sigma: float, generator: torch.Generator) -> torch.Tensor:
    """x + N(0, sigma) (normalised units)."""
    if sigma <= 0:
        return x
    noise = torch.randn(x.shape, generator=generator, device=generator.device, dtype=x.dtype).to(x.device)
    return x + sigma * noise


class Augment:
    """Raw-stamp augmentations of one spec; call on (B, C, H, W) with a generator."""

    def __init__(self, spec: AugmentSpec | dict):
        self.spec = spec if isinstance(spec, AugmentSpec) else AugmentSpec(**spec)

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if self.spec.dihedral:
            x = dihedral(x, generator)
        x = shift(x, self.spec.max_shift_px, generator)
        return random_blur(x, self.spec.blur_prob, self.spec.blur_max_sigma_px, generator)
