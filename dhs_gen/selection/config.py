"""Configuration of the selection function (``configs/selection*.yaml``)."""
# ruff: noqa: UP045  (pydantic on Python 3.9 needs Optional[...], not X | None)
from __future__ import annotations

import math
from typing import Dict, List, Literal, Optional

from pydantic import ConfigDict, Field, field_validator, model_validator

from dhs_gen.config import StrictModel

INF = math.inf


def _default_axes() -> Dict[str, List[float]]:
    # Edges midway between the phase-4a grid points (theta_E every 0.25", z_l every 0.1), so each
    # grid value sits at its bin centre, safe from float32 rounding at an edge.
    return {
        "theta_e_arcsec": [round(0.375 + 0.25 * i, 3) for i in range(12)],  # 0.375 .. 3.125
        "z_l": [round(0.05 + 0.1 * i, 2) for i in range(10)],  # 0.05 .. 0.95
        # theta_E / PSF FWHM (r); the legacy resolution bins <0.4, 0.4-0.6, ..., >=1.0
        "theta_over_psf": [0.0, 0.4, 0.6, 0.8, 1.0, INF],
        "src_mag_r": [round(20.0 + 0.5 * i, 1) for i in range(13)],  # 20 .. 26 AB
        "arc_snr_sum": [0.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, INF],
    }


class CleanCuts(StrictModel):
    """The "clean" subset: valid_all plus few bad pixels and no injected artifacts."""

    max_bad_pixel_frac: float = Field(0.2, ge=0.0, le=1.0)
    # artifact_profile values that count as clean; a null profile is always clean.
    clean_artifact_profiles: List[str] = ["none", "clean", ""]


class BootstrapConfig(StrictModel):
    """HEALPix region bootstrap: regions are NESTED pixels at ``nside`` (coarsened from 128)."""

    n_boot: int = Field(500, ge=0)
    nside: int = 16
    seed: int = 42

    @field_validator("nside")
    @classmethod
    def _power_of_two(cls, v: int) -> int:
        if v < 1 or v > 128 or v & (v - 1):
            raise ValueError("nside must be a power of two in [1, 128]")
        return v


class ModelProvenance(StrictModel):
    """How to prove one scored model never trained on the selection injection set."""

    model_id: str
    frozen_model: Optional[str] = None  # a training.export bundle (model_id + data manifest hash)
    training_manifest: Optional[str] = None  # the training_manifest dataset it was trained on
    members: List[str] = []  # an ensemble's member frozen models (each one is checked)


class ProvenanceConfig(StrictModel):
    models: List[ModelProvenance] = []
    # Scores from models without provenance are refused unless this is set (reported as unverified).
    allow_unverified: bool = False
    # A selection host seen in training (e.g. as a negative) fails the run; false: report the overlap.
    fail_on_host_overlap: bool = True


class ObservabilityConfig(StrictModel):
    """theta_E <-> sigma_v / M(<theta_E) for an SIS/SIE (astropy cosmology by name)."""

    cosmology: Literal["WMAP1", "WMAP3", "WMAP5", "WMAP7", "WMAP9", "Planck13", "Planck15", "Planck18"] = "Planck18"
    z_s: float = Field(1.5, gt=0.0)  # source redshift used when the injection set has no z_s


class RealismConfig(StrictModel):
    """Injection-realism audit: probe AUC separating real lenses from brightness-matched injections.

    The comparison set must be real survey images of lenses: lenses painted into a mock survey by the
    injection code itself cannot show a realism gap."""

    enabled: bool = False
    # the REAL lens set (dhs_gen.selection.real_lenses): "packaged" (six real DR10 candidate cutouts), a
    # folder of .npz/.fits cutouts (with real_catalogue: CSV/Parquet listing them), or a cutout table
    # (Parquet with the images in real_column, e.g. `dhs cutouts` of a published candidate list)
    real_cutouts: Optional[str] = None
    real_catalogue: Optional[str] = None
    real_set_name: str = ""  # how the summary and report name the set (default: packaged name / folder name)
    real_set_source: str = ""  # where it comes from (paper, list, URL); default: the path
    real_column: str = "cutout"
    injection_column: str = "stamp"
    frozen_model: Optional[str] = None  # penultimate features; pixel statistics always run
    n_splits: int = Field(5, ge=2)
    n_boot: int = Field(1000, ge=0)
    max_injections: int = Field(2000, ge=10)
    seed: int = 42


class SelectionConfig(StrictModel):
    """``dhs selection-function`` / ``dhs completeness``: scores -> completeness tables (-> figures)."""

    # keep an infinite last bin edge as Infinity (not null) in the resolved config
    model_config = ConfigDict(ser_json_inf_nan="constants")

    injections: Optional[str] = None  # phase-4c stamps dataset of the grid design
    scores: Optional[str] = None  # scores of the injections (id = task_id), one or more models
    negative_scores: Optional[str] = None  # scores of real / mock-survey negatives
    output: Optional[str] = None
    # Cuts are set on the logit only: the float32 sigmoid (model_score) saturates to 1.0 above a
    # logit of ~17 and would tie distinct scores at the cut.
    score_column: Literal["logit"] = "logit"
    fprs: List[float] = [1e-2, 1e-3, 1e-4]
    proxy_thresholds: List[float] = [0.6, 0.7, 0.8, 0.9]
    proxy_arc_snr_min: float = 5.0  # phase-4d proxy: arc_snr_max >= this and theta/PSF >= cut
    axes: Dict[str, List[float]] = Field(default_factory=_default_axes)
    grids: List[List[str]] = [["theta_e_arcsec", "z_l"], ["theta_over_psf", "src_mag_r"]]
    low_n: int = Field(50, ge=1)
    clean: CleanCuts = CleanCuts()
    bootstrap: BootstrapConfig = BootstrapConfig()
    provenance: ProvenanceConfig = ProvenanceConfig()
    observability: ObservabilityConfig = ObservabilityConfig()
    realism: RealismConfig = RealismConfig()
    figures: bool = True

    @field_validator("fprs")
    @classmethod
    def _fprs_in_range(cls, v: List[float]) -> List[float]:
        bad = [f for f in v if not 0.0 < f < 1.0]
        if bad:
            raise ValueError(f"FPR targets must lie in (0, 1), got {bad}")
        return v

    @model_validator(mode="after")
    def _axes_consistent(self) -> SelectionConfig:
        for name, edges in self.axes.items():
            if len(edges) < 2 or any(b <= a for a, b in zip(edges, edges[1:])):
                raise ValueError(f"axes.{name}: edges must be strictly increasing, at least two")
        for grid in self.grids:
            missing = [c for c in grid if c not in self.axes]
            if len(grid) != 2 or missing:
                raise ValueError(f"grids entry {grid}: needs two axis names defined in axes")
        return self
