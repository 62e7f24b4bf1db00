# ruff: noqa: UP045  (pydantic evaluates these annotations at runtime; Python 3.9 needs Optional)
"""Configuration models of the catalogue stages, with the named pool presets.

Presets: ``default`` is the research plan's pool (maskbits == 0, nobs_g/r >= 1, nobs_z >= 3,
SER/DEV/REX, 11" from any known lens); ``paper_iv_parity`` reproduces the earlier production
pool (-18 < Dec < 32 deg, maskbits bits 1,5,6,7,11,12,13 rejected, nobs_g/r/z >= 3, z < 20 mag).
"""
from __future__ import annotations

from typing import Dict, List, Literal, Optional

from pydantic import Field, field_validator, model_validator

from dhs_gen.catalog.splits import DEFAULT_FRACTIONS, DEFAULT_NAMES, check_fractions
from dhs_gen.config import StrictModel

NOBS_Z_BINS = ("3-5", "6-10", "11+")
TYPE_BINS = ("SER", "DEV", "REX")
NobsZBin = Literal["1-2", "3-5", "6-10", "11+"]  # the nobs_z_bin labels the pool writes
TypeBin = Literal["SER", "DEV", "REX", "OTHER"]  # the type_bin labels the pool writes
SplitScheme = Literal["legacy_sha256", "stable_hash64"]  # dhs_gen.catalog.splits.SCHEMES
PoolPreset = Literal["default", "paper_iv_parity"]  # the keys of POOL_PRESETS
Grading = Literal["confident", "probable"]  # lenscat gradings
CONFUSER_CATEGORIES = ("ring_proxy", "edge_on_proxy", "blue_clumpy", "large_galaxy")


class SplitConfig(StrictModel):
    """HEALPix split assignment (nside 128 NESTED; see dhs_gen.catalog.splits)."""

    seed: int = 42
    fractions: List[float] = Field(default_factory=lambda: list(DEFAULT_FRACTIONS))
    names: List[str] = Field(default_factory=lambda: list(DEFAULT_NAMES))
    scheme: SplitScheme = "legacy_sha256"

    @model_validator(mode="after")
    def _check(self):
        check_fractions(self.fractions, self.names)
        return self


class PoolCuts(StrictModel):
    """Negative-pool cuts; None disables a cut."""

    dec_min_deg: Optional[float] = None
    dec_max_deg: Optional[float] = None
    maskbits_reject_bits: Optional[List[int]] = None  # None: any set bit rejects (maskbits == 0)
    nobs_g_min: int = 1
    nobs_r_min: int = 1
    nobs_z_min: int = 3
    types: List[str] = Field(default_factory=lambda: list(TYPE_BINS))
    mag_z_max: Optional[float] = None  # AB mag, strict (z < mag_z_max)
    exclusion_radius_arcsec: float = 11.0

    @field_validator("maskbits_reject_bits")
    @classmethod
    def _bits(cls, bits):
        if bits is not None and any(not 0 <= b < 31 for b in bits):
            raise ValueError("maskbits bits must be in 0..30")
        return bits


POOL_PRESETS: Dict[str, PoolCuts] = {
    "default": PoolCuts(),
    "paper_iv_parity": PoolCuts(dec_min_deg=-18.0, dec_max_deg=32.0, maskbits_reject_bits=[1, 5, 6, 7, 11, 12, 13],
                                nobs_g_min=3, nobs_r_min=3, nobs_z_min=3, mag_z_max=20.0),
}


class ConfuserThresholds(StrictModel):
    """N2 confuser categories, first match wins (order of CONFUSER_CATEGORIES).

    ring_proxy: DEV with flux_r >= ring_flux_r_min [nmgy], or SER with that flux and sersic >= ring_sersic_min.
    edge_on_proxy: |e| = hypot(shape_e1, shape_e2) >= edge_on_e_min and shape_r >= edge_on_shape_r_min
      [arcsec]; where |e| is unknown, shape_r >= edge_on_shape_r_fallback [arcsec].
    blue_clumpy: g - r <= blue_g_minus_r_max [mag] and mag_r <= blue_mag_r_max [AB mag].
    large_galaxy: shape_r >= large_shape_r_min [arcsec] and flux_r >= large_flux_r_min [nmgy].
    """

    ring_flux_r_min: float = 5.0
    ring_sersic_min: float = 4.0
    edge_on_e_min: float = 0.5
    edge_on_shape_r_min: float = 0.6
    edge_on_shape_r_fallback: float = 1.8
    blue_g_minus_r_max: float = 0.4
    blue_mag_r_max: float = 20.5
    large_shape_r_min: float = 2.0
    large_flux_r_min: float = 3.0


class PoolConfig(StrictModel):
    """The negative pool: a preset (or explicit cuts) and the confuser thresholds."""

    preset: PoolPreset = "default"
    cuts: Optional[PoolCuts] = None
    confusers: ConfuserThresholds = Field(default_factory=ConfuserThresholds)
    join_nside: int = 4096

    def effective_cuts(self) -> PoolCuts:
        return self.cuts if self.cuts is not None else POOL_PRESETS[self.preset]


class PositivesConfig(StrictModel):
    """Positives: lenscat selection, crossmatch radius, tiers and weights."""

    catalog: Optional[str] = None  # lenscat csv(.gz); None: the packaged copy
    survey: Optional[str] = "DESI"
    lens_types: Optional[List[str]] = None
    gradings: Optional[List[Grading]] = None
    match_radius_arcsec: float = 5.0
    tier_a_weight: float = 1.0
    tier_b_weight: float = 0.5
    join_nside: int = 4096

    @field_validator("tier_b_weight")
    @classmethod
    def _tier_b(cls, value):
        if not 0.3 <= value <= 0.6:
            raise ValueError("tier_b_weight must be in 0.3-0.6")
        return value


class SamplingConfig(StrictModel):
    """Stratified negative sampling per (nobs_z_bin, type_bin) stratum."""

    seed: int = 42
    negatives_per_positive: float = 100.0
    n2_fraction: float = Field(0.15, ge=0.0, le=1.0)
    nobs_z_bins: List[NobsZBin] = Field(default_factory=lambda: list(NOBS_Z_BINS))
    type_bins: List[TypeBin] = Field(default_factory=lambda: list(TYPE_BINS))
    target_total: Optional[int] = None  # without positives: split by pool availability
    min_total_fraction: float = 0.9
    n1_fraction_range: List[float] = Field(default_factory=lambda: [0.80, 0.92])
    candidate_margin: float = 1.2  # hash-threshold prefilter oversampling (exactness is checked)


class CompactConfig(StrictModel):
    """Compaction: target file size [MB], the id column, whether to relabel splits (with ``splits``)."""

    target_file_mb: float = 128.0
    id_column: str = "galaxy_id"
    split_column: str = "split"
    pixel_column: str = "healpix_128"
    relabel: bool = False
    partition_by_split: bool = True
    max_files: int = 10000


class ManifestConfig(StrictModel):
    """Training manifest: weights of the negative tiers and the stamp reference template."""

    negative_weights: Dict[str, float] = Field(default_factory=lambda: {"N1": 1.0, "N2": 1.0})
    stamp_ref_template: str = "cutouts/{galaxy_id}.npz"
    require_cutout_ok: bool = True


class GatesConfig(StrictModel):
    """Pre-training gates: expected split fractions (+- tolerance), allowed weight range per tier."""

    split_fractions: Dict[str, float] = Field(default_factory=lambda: {"train": 0.70, "val": 0.15, "test": 0.15})
    split_tolerance: float = 0.05
    tier_weights: Dict[str, List[float]] = Field(default_factory=lambda: {
        "A": [1.0, 1.0], "B": [0.3, 0.6], "N1": [1.0, 1.0], "N2": [1.0, 1.0]})
    central_box_pixels: int = 50

    @field_validator("tier_weights")
    @classmethod
    def _ranges(cls, value):
        for tier, rng in value.items():
            if len(rng) != 2 or rng[0] > rng[1]:
                raise ValueError(f"tier_weights.{tier} must be [lo, hi] with lo <= hi")
        return value


class CatalogConfig(StrictModel):
    """All catalogue stages in one file (configs/catalog*.yaml); each job reads its section.

    ``splits`` is the one HEALPix split every stage uses, so positives, the pool, relabels and
    the manifest always agree.
    """

    positives: PositivesConfig = Field(default_factory=PositivesConfig)
    pool: PoolConfig = Field(default_factory=PoolConfig)
    sampling: SamplingConfig = Field(default_factory=SamplingConfig)
    splits: SplitConfig = Field(default_factory=SplitConfig)
    compact: CompactConfig = Field(default_factory=CompactConfig)
    manifest: ManifestConfig = Field(default_factory=ManifestConfig)
    gates: GatesConfig = Field(default_factory=GatesConfig)
    enforce_gates: bool = True
