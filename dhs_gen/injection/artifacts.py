"""Gen8 domain randomisation: artifact profiles drawn per row, identical on every product.

One realisation is drawn per injection row from its own generator and applied to the positive,
its paired control and the hard negative alike, so no artifact statistic can separate the labels
(tests/dhs_gen/injection/test_artifacts.py proves it). Amplitudes scale with the host's own
noise σ per band [nmgy/pixel]. Kinds: cosmic rays (1-3 pixel tracks, one band), satellite trails
(a straight line across the stamp, one band), bad columns (a dead column, one band, set to 0),
background gradients (a linear plane in every band), PSF mismatch (the arc is rendered with its
FWHM scaled) and noise rescaling (extra Gaussian noise so σ becomes s·σ, s ≥ 1).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Tuple

import numpy as np

from dhs_gen.config import ConfigError


@dataclass(frozen=True)
class ArtifactProfile:
    """Probabilities and amplitude ranges of each artifact kind (amplitudes in units of σ)."""

    p_cosmic: float = 0.0
    cosmic_mean_count: float = 1.0
    cosmic_amp_sigma: Tuple[float, float] = (5.0, 50.0)
    p_trail: float = 0.0
    trail_amp_sigma: Tuple[float, float] = (1.0, 5.0)
    p_bad_column: float = 0.0
    p_gradient: float = 0.0
    gradient_amp_sigma: float = 0.5
    p_psf_mismatch: float = 0.0
    psf_scale_range: Tuple[float, float] = (0.95, 1.05)
    p_noise: float = 0.0
    noise_scale_range: Tuple[float, float] = (1.0, 1.2)


PROFILES: Dict[str, ArtifactProfile] = {
    "none": ArtifactProfile(),
    "mild": ArtifactProfile(p_cosmic=0.3, p_trail=0.05, p_bad_column=0.05, p_gradient=0.3,
                            p_psf_mismatch=0.5, p_noise=0.3),
    "strong": ArtifactProfile(p_cosmic=0.7, cosmic_mean_count=3.0, p_trail=0.2, trail_amp_sigma=(2.0, 10.0),
                              p_bad_column=0.2, p_gradient=0.7, gradient_amp_sigma=2.0, p_psf_mismatch=0.8,
                              psf_scale_range=(0.85, 1.15), p_noise=0.6, noise_scale_range=(1.0, 1.5)),
}


def get_profile(name: str) -> ArtifactProfile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ConfigError(f"unknown artifact profile {name!r}; known: {sorted(PROFILES)}") from None


@dataclass
class ArtifactDraw:
    """One row's realisation: PSF FWHM scale per band, an additive image and dead columns."""

    psf_scale: np.ndarray
    additive: np.ndarray | None = None
    dead: list = field(default_factory=list)  # (band, column) pairs

    @property
    def kinds(self) -> int:
        return int(self.additive is not None) + len(self.dead) + int(np.any(self.psf_scale != 1.0))

    def apply(self, image: np.ndarray) -> np.ndarray:
        """The (C, H, W) image with this realisation's artifacts (a new array)."""
        out = image + self.additive if self.additive is not None else image.copy()
        for band, column in self.dead:
            out[band, :, column] = 0.0
        return out


def draw_artifacts(profile: ArtifactProfile, rng: np.random.Generator, sigma: np.ndarray,
                   shape: Tuple[int, int, int]) -> ArtifactDraw:
    """Draw one realisation for a (C, H, W) stamp with host noise ``sigma`` (C,) [nmgy/pixel]."""
    n_bands, h, w = shape
    sigma = np.where(np.isfinite(sigma) & (sigma > 0), sigma, 0.0).astype(np.float32)
    psf_scale = np.ones(n_bands)
    if rng.random() < profile.p_psf_mismatch:
        psf_scale = rng.uniform(*profile.psf_scale_range, size=n_bands)
    add = np.zeros(shape, dtype=np.float32)
    touched = False
    if rng.random() < profile.p_cosmic:
        for _ in range(max(1, rng.poisson(profile.cosmic_mean_count))):
            band, r0, c0 = rng.integers(n_bands), rng.integers(h), rng.integers(w)
            length, angle = rng.integers(1, 4), rng.uniform(0, np.pi)
            rows = np.clip(np.round(r0 + np.arange(length) * np.sin(angle)).astype(int), 0, h - 1)
            cols = np.clip(np.round(c0 + np.arange(length) * np.cos(angle)).astype(int), 0, w - 1)
            add[band, rows, cols] += rng.uniform(*profile.cosmic_amp_sigma) * sigma[band]
        touched = True
    if rng.random() < profile.p_trail:
        band, angle = rng.integers(n_bands), rng.uniform(0, np.pi)
        offset = rng.uniform(-0.5, 0.5) * min(h, w)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        dist = (xx - (w - 1) / 2) * np.sin(angle) - (yy - (h - 1) / 2) * np.cos(angle) - offset
        add[band] += rng.uniform(*profile.trail_amp_sigma) * sigma[band] * np.exp(-0.5 * dist**2)
        touched = True
    if rng.random() < profile.p_gradient:
        gx, gy = rng.normal(size=2)
        norm = np.hypot(gx, gy) or 1.0
        ramp = (np.arange(w)[None, :] * gx + np.arange(h)[:, None] * gy) / norm / max(h, w)
        add += (profile.gradient_amp_sigma * sigma[:, None, None] * (ramp - ramp.mean())).astype(np.float32)
        touched = True
    if rng.random() < profile.p_noise:
        scale = rng.uniform(*profile.noise_scale_range)
        extra = sigma * np.sqrt(max(scale**2 - 1.0, 0.0))
        add += rng.standard_normal(shape).astype(np.float32) * extra[:, None, None]
        touched = True
    dead = []
    if rng.random() < profile.p_bad_column:
        dead.append((int(rng.integers(n_bands)), int(rng.integers(w))))
    return ArtifactDraw(psf_scale=psf_scale, additive=add if touched else None, dead=dead)
