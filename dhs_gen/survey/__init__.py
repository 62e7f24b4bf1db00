"""Survey access behind one interface: the mock DR10 survey, the Legacy Surveys cutout service,
and coadd caches. ``provider.get_cutout(ra, dec, size=101) -> Cutout`` everywhere."""
from __future__ import annotations

from dhs_gen.survey.base import Cutout, CutoutProvider, SurveyError
from dhs_gen.survey.coadd import CoaddCutoutProvider
from dhs_gen.survey.hosts import load_lrg_sample
from dhs_gen.survey.mock import MockDR10
from dhs_gen.survey.providers import ProviderConfig, make_provider
from dhs_gen.survey.service import LegacySurveyService

__all__ = ["Cutout", "CutoutProvider", "SurveyError", "MockDR10", "LegacySurveyService", "CoaddCutoutProvider",
           "ProviderConfig", "make_provider", "load_lrg_sample"]
