"""Injection designs: the named θ_E × z_l × source-magnitude grids and the parameter priors.

Everything here is declarative (pydantic models) plus one vectorised sampler,
:func:`sample_parameters`, that turns per-row uniforms into physical parameters. Units: angles
in arcsec, magnitudes AB, fluxes nanomaggies (zero point 22.5). Ellipticities follow
lenstronomy: ``e1 = (1-q)/(1+q) cos 2φ``, ``e2 = (1-q)/(1+q) sin 2φ``. Redshifts are
dimensionless; the source redshift ``z_s`` is drawn conditioned on the row's lens redshift.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import numpy as np
from pydantic import Field, model_validator

from dhs_gen.config import ConfigError, StrictModel
from dhs_gen.sources.priors import SOURCE_G_MINUS_R, SOURCE_R_MINUS_Z, source_colours
from dhs_gen.units import mag_to_nmgy

Range = Tuple[float, float]


class GridSpec(StrictModel):
    """A regular selection-function grid: θ_E points [arcsec] × z_l points × r-mag bin edges [AB]."""

    theta_e_arcsec: List[float]
    z_l: List[float]
    src_mag_r_edges: List[float] = Field(description="source r-magnitude bin edges; a cell draws U(lo, hi)")
    z_l_edges: Optional[List[float]] = Field(  # noqa: UP045 (pydantic on Python 3.9)
        None, description="z_l bin edges (len(z_l) + 1), each point inside its bin; default: midway between "
                          "points, the outer edges half a spacing out (±0.05 for a single point)")

    @model_validator(mode="after")
    def _check(self):
        if not self.theta_e_arcsec or not self.z_l or len(self.src_mag_r_edges) < 2:
            raise ValueError("grid needs >= 1 theta_E, >= 1 z_l and >= 2 magnitude edges")
        if any(t <= 0 for t in self.theta_e_arcsec):
            raise ValueError(f"theta_E must be > 0 arcsec, got {self.theta_e_arcsec}")
        if list(np.diff(self.src_mag_r_edges) > 0).count(False):
            raise ValueError(f"magnitude edges must increase, got {self.src_mag_r_edges}")
        if list(np.diff(self.z_l) > 0).count(False):
            raise ValueError(f"z_l points must increase, got {self.z_l}")
        edges = self.z_l_bin_edges
        if len(edges) != len(self.z_l) + 1 or not np.all((edges[:-1] <= self.z_l) & (np.asarray(self.z_l) < edges[1:])) \
                or edges[0] < 0:
            raise ValueError(f"z_l_edges {edges.tolist()} must be {len(self.z_l) + 1} values >= 0 with every "
                             f"z_l point {self.z_l} inside its bin [lo, hi)")
        return self

    @property
    def z_l_bin_edges(self) -> np.ndarray:
        """The z_l bin edges (n_z + 1,): bin i is [edges[i], edges[i+1]) and holds point z_l[i]."""
        if self.z_l_edges is not None:
            return np.asarray(self.z_l_edges, dtype=np.float64)
        z = np.asarray(self.z_l, dtype=np.float64)
        if len(z) == 1:
            return np.array([z[0] - 0.05, z[0] + 0.05])
        mid = 0.5 * (z[1:] + z[:-1])
        return np.round(np.r_[z[0] - (mid[0] - z[0]), mid, z[-1] + (z[-1] - mid[-1])], 6)

    def z_l_bin(self, z) -> np.ndarray:
        """Index of the z_l bin holding each redshift; -1 outside every bin or non-finite."""
        edges = self.z_l_bin_edges
        z = np.asarray(z, dtype=np.float64)
        index = np.searchsorted(edges, np.nan_to_num(z, nan=-1.0), side="right") - 1
        return np.where(np.isfinite(z) & (index >= 0) & (index < len(edges) - 1), index, -1)

    @property
    def n_sub_cells(self) -> int:
        """Cells per z_l bin: θ_E points × magnitude bins."""
        return len(self.theta_e_arcsec) * (len(self.src_mag_r_edges) - 1)

    def cell_index(self, z_bin: np.ndarray, sub: np.ndarray) -> np.ndarray:
        """Flat cell index of (z_l bin, sub-cell) pairs; sub-cell = θ_E index × n_mag + magnitude bin."""
        n_z, n_m = len(self.z_l), len(self.src_mag_r_edges) - 1
        i_t, i_m = np.divmod(np.asarray(sub, dtype=np.int64), n_m)
        return (i_t * n_z + np.asarray(z_bin, dtype=np.int64)) * n_m + i_m

    @property
    def n_cells(self) -> int:
        return len(self.theta_e_arcsec) * len(self.z_l) * (len(self.src_mag_r_edges) - 1)

    def cell(self, index: np.ndarray) -> Dict[str, np.ndarray]:
        """θ_E, z_l and the magnitude bin (lo, hi) of flat cell indices (θ_E slowest)."""
        index = np.asarray(index, dtype=np.int64)
        n_z, n_m = len(self.z_l), len(self.src_mag_r_edges) - 1
        i_t, rest = np.divmod(index, n_z * n_m)
        i_z, i_m = np.divmod(rest, n_m)
        edges = np.asarray(self.src_mag_r_edges, dtype=np.float64)
        z_edges = self.z_l_bin_edges
        return {"theta_e_arcsec": np.asarray(self.theta_e_arcsec)[i_t], "z_l": np.asarray(self.z_l)[i_z],
                "z_l_lo": z_edges[i_z], "z_l_hi": z_edges[i_z + 1], "mag_lo": edges[i_m], "mag_hi": edges[i_m + 1]}


class PriorSpec(StrictModel):
    """Priors of every injection parameter (the ``random`` design; also fills a grid cell's rest).

    ``src_beta_frac``: source offset β/θ_E drawn area-weighted (p(β) ∝ β) in this range.
    Colours: normal in mag truncated to :data:`dhs_gen.sources.priors.COLOUR_LIMITS`, the one
    definition the ``sersic`` generator also uses; the defaults are the project's source-colour
    prior (:data:`dhs_gen.sources.priors.SOURCE_G_MINUS_R`, ``SOURCE_R_MINUS_Z``). Source fluxes
    follow from r and the colours.

    ``z_l``: the range of the lens redshift where a design draws it; manifests take the row's z_l
    from its host (:mod:`dhs_gen.injection.manifest`), so this range is not drawn from there.

    ``z_s``: source redshift, U(lo, hi) conditioned on ``z_s >= z_l + z_s_dz_min`` (a truncated
    uniform is uniform on the truncated range: ``z_s ~ U(max(lo, z_l + dz), hi)``), one uniform per
    row, so ``z_s > z_l`` always. It labels the row (θ_E → σ_v, mass); it does not enter rendering.
    """

    theta_e_arcsec: Range = (0.5, 3.0)
    z_l: Range = (0.2, 0.8)
    lens_q: Range = (0.5, 1.0)
    shear_sigma: float = 0.05
    lens_center_sigma_arcsec: float = 0.05
    src_mag_r: Range = (23.0, 26.0)
    src_beta_frac: Range = (0.1, 0.4)
    src_reff_arcsec: Range = (0.15, 0.5)
    src_n_sersic: Range = (0.5, 2.0)
    src_q: Range = (0.3, 1.0)
    src_g_minus_r: Tuple[float, float] = Field(SOURCE_G_MINUS_R, description="(mean, sigma) mag, truncated normal")
    src_r_minus_z: Tuple[float, float] = Field(SOURCE_R_MINUS_Z, description="(mean, sigma) mag, truncated normal")
    z_s: Range = Field((1.0, 3.0), description="source redshift range (lo, hi), 0 < lo < hi")
    z_s_dz_min: float = Field(0.2, gt=0, description="minimum z_s - z_l (dimensionless, > 0)")

    @model_validator(mode="after")
    def _check(self):
        for name in ("theta_e_arcsec", "lens_q", "src_beta_frac", "src_reff_arcsec", "src_n_sersic", "src_q"):
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi:
                raise ValueError(f"{name}: need 0 <= lo <= hi, got ({lo}, {hi})")
        if self.lens_q[1] > 1 or self.src_q[1] > 1:
            raise ValueError("axis ratios q must be <= 1")
        if not 0 <= self.z_l[0] <= self.z_l[1]:
            raise ValueError(f"z_l: need 0 <= lo <= hi, got {self.z_l}")
        if not 0 < self.z_s[0] < self.z_s[1]:
            raise ValueError(f"z_s: need 0 < lo < hi, got {self.z_s}")
        self.check_z_l(self.z_l[1])
        return self

    def check_z_l(self, z_l_max: float) -> None:
        """Raise unless a lens at ``z_l_max`` leaves room for a source: z_l_max + dz_min < z_s hi."""
        if not z_l_max + self.z_s_dz_min < self.z_s[1]:
            raise ValueError(f"z_s: upper limit {self.z_s[1]} must exceed z_l {z_l_max} + z_s_dz_min "
                             f"{self.z_s_dz_min}")


def _grid(theta, z_l, mags) -> dict:
    return {"theta_e_arcsec": [round(float(t), 4) for t in theta], "z_l": [round(float(z), 4) for z in z_l],
            "src_mag_r_edges": [round(float(m), 4) for m in mags]}


# Named grids of the earlier pipeline (their exact axes are not recorded in its data, so these
# are this project's definitions, documented in docs/injection_jobs.md; θ_E spans 0.5-3.0").
GRID_PRESETS: Dict[str, dict] = {
    "grid_small": _grid([0.5, 1.0, 1.5, 2.0, 2.5, 3.0], [0.3, 0.4, 0.5, 0.6, 0.7], [23.0, 24.5, 26.0]),
    "grid_medium": _grid(np.arange(0.5, 3.01, 0.25), [0.2, 0.4, 0.6, 0.8], [23.0, 24.0, 25.0, 26.0]),
    "grid_full": _grid(np.arange(0.5, 3.01, 0.1), np.arange(0.1, 0.91, 0.1), np.arange(22.0, 26.01, 0.5)),
    "grid_sota": _grid(np.arange(0.5, 3.01, 0.25), np.arange(0.2, 0.81, 0.1), np.arange(20.0, 26.01, 0.5)),
}

# "legacy_final": the earlier pipeline's final selection-function priors (LEGACY_FORMATS.md),
# red source colours included (g-r ≈ 1.15: the LRG's own colour, not a lensed source's).
# "dr10_blue" (default, the project's one source-colour prior): the same geometry with the
# colours of faint COSMOS galaxies, the real lensed-source population (dhs_gen.sources.priors:
# g-r ~ N(0.35, 0.25), r-z ~ N(0.45, 0.30), truncated to [-0.5, 2]). The earlier
# pipeline recorded no source redshift (LEGACY_FORMATS.md lists no z_s column), so both presets
# share this project's z_s prior, U(1.0, 3.0) with z_s >= z_l + 0.2: the range of sources behind
# galaxy-scale lenses found in ground-based imaging (SL2S, DES/DECaLS follow-up) rather than the
# lower-z spectroscopically selected SLACS sources.
PRIOR_PRESETS: Dict[str, dict] = {
    "dr10_blue": {},
    "legacy_final": {"src_g_minus_r": (1.15, 0.30), "src_r_minus_z": (0.85, 0.20)},
}

#: Uniform draws each row consumes, in this order (documented so designs stay reproducible);
#: z_s's draw is the last (index 17), appended so the first 17 keep every earlier manifest's values.
N_UNIFORMS = 18


def grid_spec(preset: str | None, grid: dict | None) -> GridSpec:
    """The grid from a preset name, optionally overridden field by field by ``grid``."""
    data = {}
    if preset:
        if preset not in GRID_PRESETS:
            raise ConfigError(f"unknown grid preset {preset!r}; known: {sorted(GRID_PRESETS)}")
        data.update(GRID_PRESETS[preset])
    data.update(grid or {})
    if not data:
        raise ConfigError("design 'grid' needs grid_preset or grid")
    return GridSpec(**data)


def prior_spec(preset: str, overrides: dict | None) -> PriorSpec:
    """The priors of a preset, optionally overridden field by field."""
    if preset not in PRIOR_PRESETS:
        raise ConfigError(f"unknown prior preset {preset!r}; known: {sorted(PRIOR_PRESETS)}")
    return PriorSpec(**{**PRIOR_PRESETS[preset], **(overrides or {})})


def _ellipticity(q: np.ndarray, phi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    e = (1.0 - q) / (1.0 + q)
    return e * np.cos(2.0 * phi), e * np.sin(2.0 * phi)


def _normal_pair(u1: np.ndarray, u2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two independent standard normals from two uniforms (Box-Muller), exact and vectorised."""
    rad = np.sqrt(-2.0 * np.log1p(-u1))
    return rad * np.cos(2.0 * np.pi * u2), rad * np.sin(2.0 * np.pi * u2)


def _source_redshift(u: np.ndarray, z_l: np.ndarray, prior: PriorSpec) -> np.ndarray:
    """z_s ~ U(max(lo, z_l + dz_min), hi): the z_s prior given z_l, by a monotone map of u in [0, 1)."""
    lo = np.maximum(prior.z_s[0], np.asarray(z_l, dtype=np.float64) + prior.z_s_dz_min)
    if lo.size and np.max(lo) >= prior.z_s[1]:
        prior.check_z_l(float(np.max(z_l)))
    return lo + (prior.z_s[1] - lo) * u


def sample_parameters(u: np.ndarray, prior: PriorSpec, theta_e: np.ndarray | None = None,
                      z_l: np.ndarray | None = None, mag_range: tuple | None = None) -> Dict[str, np.ndarray]:
    """Physical parameters of n injections from uniforms ``u`` (n, N_UNIFORMS) in [0, 1).

    ``theta_e``/``z_l`` (n,) and ``mag_range`` ((n,), (n,)) replace the priors' draws (grid
    cells; z_l: the host's redshift); ``z_s`` is always drawn, conditioned on the row's z_l.
    Returns float64 arrays keyed by manifest column names.
    """
    u = np.asarray(u, dtype=np.float64)
    if u.ndim != 2 or u.shape[1] != N_UNIFORMS:
        raise ValueError(f"need uniforms of shape (n, {N_UNIFORMS}), got {u.shape}")

    def lerp(k, rng):
        return rng[0] + (rng[1] - rng[0]) * u[:, k]

    out: Dict[str, np.ndarray] = {}
    out["theta_e_arcsec"] = lerp(0, prior.theta_e_arcsec) if theta_e is None else np.asarray(theta_e, float)
    out["z_l"] = lerp(1, prior.z_l) if z_l is None else np.asarray(z_l, float)
    out["lens_e1"], out["lens_e2"] = _ellipticity(lerp(2, prior.lens_q), np.pi * u[:, 3])
    g1, g2 = _normal_pair(u[:, 4], u[:, 5])
    out["shear_gamma1"], out["shear_gamma2"] = prior.shear_sigma * g1, prior.shear_sigma * g2
    c1, c2 = _normal_pair(u[:, 6], u[:, 7])
    out["lens_center_x"] = prior.lens_center_sigma_arcsec * c1
    out["lens_center_y"] = prior.lens_center_sigma_arcsec * c2
    lo, hi = (prior.src_mag_r if mag_range is None else mag_range)
    out["src_mag_r"] = np.asarray(lo) + (np.asarray(hi) - np.asarray(lo)) * u[:, 8]
    b_lo, b_hi = prior.src_beta_frac
    beta = out["theta_e_arcsec"] * np.sqrt(b_lo**2 + (b_hi**2 - b_lo**2) * u[:, 9])
    ang = 2.0 * np.pi * u[:, 10]
    out["src_x_arcsec"], out["src_y_arcsec"] = beta * np.cos(ang), beta * np.sin(ang)
    out["src_reff_arcsec"] = lerp(11, prior.src_reff_arcsec)
    out["src_n_sersic"] = lerp(12, prior.src_n_sersic)
    out["src_e1"], out["src_e2"] = _ellipticity(lerp(13, prior.src_q), np.pi * u[:, 14])
    g_r, r_z = source_colours(u[:, 15], u[:, 16], prior.src_g_minus_r, prior.src_r_minus_z)
    out["src_flux_r"] = mag_to_nmgy(out["src_mag_r"])
    out["src_flux_g"] = mag_to_nmgy(out["src_mag_r"] + g_r)
    out["src_flux_z"] = mag_to_nmgy(out["src_mag_r"] - r_z)
    out["z_s"] = _source_redshift(u[:, 17], out["z_l"], prior)
    return out
