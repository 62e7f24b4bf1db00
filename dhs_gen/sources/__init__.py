"""Source generators for injections: a registry of named generators with declared parameters.

Registered: "sersic" (analytic elliptical Sérsic, faint blue), "cosmos" (real HST COSMOS
galaxies from the cleaned bank), "sersic_clumps" (Gen7 disk + star-forming clumps).
Usage: ``batch = get_source("sersic").sample(rng, n, theta_E=theta_E)`` then
``render_lensed_source(lens, batch, psf_fwhm)``.
"""
from __future__ import annotations

from dhs_gen.sources import clumps, cosmos, sersic  # noqa: F401  (register the generators)
from dhs_gen.sources.registry import (
           ParamSpec,
           SourceError,
           SourceGenerator,
           get_source,
           list_sources,
           register_source,
)
from dhs_gen.sources.render import render_lensed_source

__all__ = ["ParamSpec", "SourceError", "SourceGenerator", "get_source", "list_sources", "register_source",
           "render_lensed_source"]
