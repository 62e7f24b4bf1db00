"""Provider configuration and the factory jobs call on executors (cheap, no sockets pickled)."""
from __future__ import annotations

from typing import Dict, Literal, Optional

from pydantic import Field

from dhs_gen.config import StrictModel
from dhs_gen.survey.base import CutoutProvider
from dhs_gen.survey.service import DEFAULT_BASE_URL
from dhs_gen.survey.sky import GALAXY_DENSITY, STAR_DENSITY


class MockOptions(StrictModel):
    """MockDR10 options (densities per deg^2; defect_rates: nan_patch, satellite_trail, missing_band;
    lens_table: CSV/Parquet URI with ra, dec [deg] and optional name, grading, theta_e [arcsec])."""

    seed: int = 0
    psf_model: Literal["moffat", "psfex"] = "moffat"
    moffat_beta: float = Field(3.5, gt=1.0)
    galaxy_density: float = Field(GALAXY_DENSITY, ge=0)
    star_density: float = Field(STAR_DENSITY, ge=0)
    noise: bool = True
    correlated_noise: bool = True
    defect_rates: Dict[str, float] = Field(default_factory=dict)
    include_lrgs: bool = True
    include_lenses: bool = True  # the known lenses of lens_table (None: lenscat) with their arcs
    lens_table: Optional[str] = None  # noqa: UP045 (pydantic on Python 3.9)
    lens_arcs: bool = True


class ServiceOptions(StrictModel):
    """LegacySurveyService options (seconds, requests/s)."""

    base_url: str = DEFAULT_BASE_URL
    layer: str = "ls-dr10"
    pixscale: float = 0.262
    timeout_s: float = Field(30.0, gt=0)
    max_retries: int = Field(5, ge=0)
    backoff_s: float = Field(1.0, ge=0)
    backoff_max_s: float = Field(60.0, ge=0)
    retry_after_max_s: float = Field(120.0, ge=0)
    max_concurrency: int = Field(4, ge=1)
    rate_limit_per_s: float = Field(2.0, ge=0)


class CoaddOptions(StrictModel):
    """CoaddCutoutProvider options: cache root URI, file pattern, optional Parquet position index."""

    root: str = ""
    pattern: str = "{galaxy_id}.npz"
    index: Optional[str] = None  # noqa: UP045 (pydantic on Python 3.9)
    match_radius_arcsec: float = Field(1.0, gt=0)


class ProviderConfig(StrictModel):
    """Which survey provider to use and its options."""

    kind: Literal["mock", "legacysurvey", "coadd"] = "mock"
    mock: MockOptions = Field(default_factory=MockOptions)
    legacysurvey: ServiceOptions = Field(default_factory=ServiceOptions)
    coadd: CoaddOptions = Field(default_factory=CoaddOptions)


def make_provider(cfg) -> CutoutProvider:
    """Build the provider a :class:`ProviderConfig` (or its dict) describes."""
    from dhs_gen.config import parse_config

    if not isinstance(cfg, ProviderConfig):
        cfg = parse_config(ProviderConfig, dict(cfg or {}), source="provider")
    if cfg.kind == "mock":
        from dhs_gen.survey.mock import MockDR10

        return MockDR10(**cfg.mock.model_dump())
    if cfg.kind == "legacysurvey":
        from dhs_gen.survey.service import LegacySurveyService

        return LegacySurveyService(**cfg.legacysurvey.model_dump())
    from dhs_gen.survey.coadd import CoaddCutoutProvider

    if not cfg.coadd.root:
        raise ValueError("provider.coadd.root is required for kind 'coadd'")
    return CoaddCutoutProvider(**cfg.coadd.model_dump())
