"""The "sersic" source: an elliptical Sérsic galaxy with faint magnitudes and blue colours.

Calibration (docs/injection_physics.md): unlensed r ~ U(23, 26) AB mag, R_e ~ U(0.15, 0.5)",
n ~ U(0.5, 2), q ~ U(0.3, 1) (the earlier pipeline's final priors). Colours: the project's one
source-colour prior, :func:`dhs_gen.sources.priors.source_colours` (faint COSMOS galaxies,
g-r ~ N(0.35, 0.25), r-z ~ N(0.45, 0.30), truncated to [-0.5, 2]), the same the phase-4a
manifest draws. The earlier pipeline's g-r ~ N(1.15, 0.30) is an LRG-like red colour, not a
star-forming source; pass ``g_r=(1.15, 0.30)`` to reproduce it.
"""
from __future__ import annotations

from typing import Dict, Tuple

import numpy as np

from dhs_gen.sources.priors import (
    COLOUR_LIMITS,
    SOURCE_G_MINUS_R,
    SOURCE_R_MINUS_Z,
    check_finite_batch,
    ellipticity_from_q_phi,
    source_colours,
    source_positions,
    uniform,
)
from dhs_gen.sources.registry import ParamSpec, SourceError, SourceGenerator, register_source
from dhs_gen.units import mag_to_nmgy


def colour_fluxes(mag_r, g_r, r_z) -> Dict[str, np.ndarray]:
    """flux_g, flux_r, flux_z [nanomaggies] from r [AB mag] and colours g-r, r-z [mag]."""
    mag_r = np.asarray(mag_r, dtype=np.float64)
    return {"flux_g": mag_to_nmgy(mag_r + g_r), "flux_r": mag_to_nmgy(mag_r), "flux_z": mag_to_nmgy(mag_r - r_z)}


def _range(value, name) -> Tuple[float, float]:
    lo, hi = (float(v) for v in value)
    if not (np.isfinite(lo) and np.isfinite(hi) and lo <= hi):
        raise SourceError(f"{name} must be a finite (low, high) with low <= high, got {value}")
    return lo, hi


class SersicSource(SourceGenerator):
    """Elliptical Sérsic source (lenstronomy SERSIC_ELLIPSE conventions)."""

    name = "sersic"
    kind = "sersic"
    n_uniforms = 9

    def __init__(self, mag_r=(23.0, 26.0), r_sersic=(0.15, 0.5), n_sersic=(0.5, 2.0), q=(0.3, 1.0),
                 g_r=SOURCE_G_MINUS_R, r_z=SOURCE_R_MINUS_Z, beta_frac=(0.1, 0.4)):
        self.mag_r = _range(mag_r, "mag_r")
        self.r_sersic = _range(r_sersic, "r_sersic")
        self.n_sersic = _range(n_sersic, "n_sersic")
        self.q = _range(q, "q")
        self.g_r = tuple(float(v) for v in g_r)
        self.r_z = tuple(float(v) for v in r_z)
        self.beta_frac = _range(beta_frac, "beta_frac")
        if self.r_sersic[0] <= 0 or self.q[0] <= 0 or self.q[1] > 1 or self.beta_frac[0] < 0:
            raise SourceError("need r_sersic > 0, 0 < q <= 1 and beta_frac >= 0")

    def params(self):
        return (
            ParamSpec("mag_r", "AB mag (unlensed)", *self.mag_r, "uniform"),
            ParamSpec("R_sersic", "arcsec (product-average half-light radius)", *self.r_sersic, "uniform"),
            ParamSpec("n_sersic", "dimensionless", *self.n_sersic, "uniform"),
            ParamSpec("q", "axis ratio", *self.q, "uniform; position angle uniform in [0, pi)"),
            ParamSpec("g_r", "mag", *COLOUR_LIMITS, f"normal{self.g_r} truncated"),
            ParamSpec("r_z", "mag", *COLOUR_LIMITS, f"normal{self.r_z} truncated"),
            ParamSpec("beta_frac", "source offset / theta_E", *self.beta_frac, "area-weighted, uniform angle"),
        )

    def from_uniforms(self, u, theta_E=None, center_x=0.0, center_y=0.0):
        u = np.asarray(u, dtype=np.float64)
        q = uniform(u[:, 3], *self.q)
        e1, e2 = ellipticity_from_q_phi(q, np.pi * u[:, 4])
        cx, cy = source_positions(u[:, 7], u[:, 8], theta_E, self.beta_frac, center_x, center_y)
        mag_r = uniform(u[:, 0], *self.mag_r)
        g_r, r_z = source_colours(u[:, 5], u[:, 6], self.g_r, self.r_z)
        batch = {"R_sersic": uniform(u[:, 1], *self.r_sersic), "n_sersic": uniform(u[:, 2], *self.n_sersic),
                 "e1": e1, "e2": e2, "center_x": cx, "center_y": cy, **colour_fluxes(mag_r, g_r, r_z),
                 "mag_r": mag_r, "g_r": g_r, "r_z": r_z}
        return dict(check_finite_batch(batch, self.name), kind=self.kind)


register_source("sersic", SersicSource)
