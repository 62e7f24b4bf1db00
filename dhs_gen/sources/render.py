"""Render any generated source batch through a lens: dispatches on the batch's ``kind``."""
from __future__ import annotations

from typing import Dict

import numpy as np

from dhs_gen import PIXEL_SCALE_ARCSEC
from dhs_gen.lensing.image_source import render_lensed_image
from dhs_gen.lensing.params import FLUX_KEYS, SERSIC_KEYS, validate_grid
from dhs_gen.lensing.render import render_lensed_sersic
from dhs_gen.sources.cosmos import template_supersampling
from dhs_gen.sources.registry import SourceError


def render_lensed_source(lens: Dict[str, np.ndarray], batch: Dict[str, np.ndarray], psf_fwhm, *,
                         stamp_size: int = 64, pixel_scale: float = PIXEL_SCALE_ARCSEC, supersampling: int = 4,
                         backend: str = "fast", out: np.ndarray | None = None) -> np.ndarray:
    """float32 (B, 3, H, W) nanomaggies/pixel for a batch from any registered generator, written
    into ``out`` when given
    (``kind`` "sersic" -> render_lensed_sersic, "image" -> render_lensed_image; an image batch with
    ``hlr_arcsec`` renders small templates with :func:`dhs_gen.sources.cosmos.template_supersampling`
    sub-pixels per side, per row)."""
    kind = batch.get("kind")
    opts = dict(stamp_size=stamp_size, pixel_scale=pixel_scale, supersampling=supersampling, backend=backend, out=out)
    if kind == "sersic":
        return render_lensed_sersic(lens, {k: batch[k] for k in SERSIC_KEYS + FLUX_KEYS}, psf_fwhm, **opts)
    if kind == "image":
        fluxes = np.stack([np.asarray(batch[k], dtype=np.float64) for k in FLUX_KEYS], axis=1)
        if "hlr_arcsec" in batch:  # small templates (COSMOS half-light radius < 0.15") get finer ray tracing
            validate_grid(stamp_size, pixel_scale, supersampling)  # before it is raised per row
            opts["supersampling"] = template_supersampling(batch["hlr_arcsec"], supersampling)
        return render_lensed_image(lens, batch["templates"], batch["template_pixel_scale"], fluxes,
                                   batch["center_x"], batch["center_y"], psf_fwhm, **opts)
    raise SourceError(f"source batch kind must be 'sersic' or 'image', got {kind!r}")
